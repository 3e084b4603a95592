"""Ending a stage's lease: the run document and the job's transition in one atomic write, then
the next stage published (or the same one, to continue)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from google.api_core.exceptions import InvalidArgument

from jobs.contract import transitions
from jobs.contract.errors import PermanentError
from jobs.contract.models import Artifact, ErrorInfo, Job, utcnow
from jobs.contract.runs import Lease, Run, exhausted_error
from jobs.telemetry.metric_logs import StageOutcome
from processor.costs import CostLedger
from processor.delivery import Delivery
from processor.leases import JobUpdate, LeaseLost
from processor.runtime import Outcome, Runtime, job_ended, publish_stage

log = logging.getLogger(__name__)

# Firestore stores at most 1 MiB in a document; the run's own fields and name need the rest.
MAX_OUTPUT_BYTES = 1024 * 1024 - 16 * 1024
# Longest text of Firestore's refusal shown to users.
_MAX_REFUSAL_TEXT = 300


class Finisher:
    """Ends one lease: the run document and the job's transition in one atomic write."""

    def __init__(
        self, runtime: Runtime, lease: Lease, costs: CostLedger, delivery: Delivery | None = None
    ) -> None:
        self._runtime = runtime
        self._lease = lease
        self._costs = costs
        self._delivery = delivery or Delivery()

    async def _finish(self, ended: Callable[[Run], Run], update: JobUpdate) -> Job | None:
        def charged(job: Job) -> Job:
            # The stage's final costs go in first, so the transition's `stages` carries them.
            return update(self._costs.charged(job, self._index(job)))

        try:
            job = await self._runtime.leases.finish(self._lease, ended, charged)
        except LeaseLost:
            log.warning("lease lost before the attempt could be recorded; the new owner decides")
            return None
        await job_ended(self._runtime, job)
        return job

    def _index(self, job: Job) -> int:
        index = job.stage_index(self._lease.stage)
        assert index is not None, "a claimed stage belongs to its job"
        return index

    async def succeeded(
        self,
        output: Any,
        result_of: Callable[[], dict[str, Any]],
        artifacts: dict[str, Artifact],
        *,
        skipped: str | None = None,
    ) -> Outcome:
        """Record the stage's output; `result_of` gives the job's result if this was the last.

        Raises PermanentError if Firestore cannot store the output or the result: no attempt
        would ever commit them.
        """
        _check_size("stage's output", output)

        def update(job: Job) -> Job:
            index = self._index(job)
            last = transitions.next_pending(job, index) is None
            result = _check_size("job's result", result_of()) if last else None
            now = utcnow()
            after = transitions.stage_succeeded(
                job, index, now, result=result, artifacts=artifacts, skipped=skipped
            )
            if after.cancel_requested and not after.status.terminal:
                after = transitions.job_cancelled(after, None, now)
            return after

        try:
            job = await self._finish(lambda run: run.succeeded(output, utcnow()), update)
        except InvalidArgument as exc:  # deterministic: the same write fails every time
            raise _refused(exc) from exc
        self._ended(StageOutcome.SKIPPED if skipped else StageOutcome.SUCCEEDED, job)
        if job is not None and not job.status.terminal and job.stage is not None:
            return await self._publish_next(job.job_id, job.stage)
        return Outcome.ACK

    async def _publish_next(self, job_id: str, stage: str) -> Outcome:
        """After the commit, nothing may fail the stage: a redelivery republishes what is next."""
        try:
            await publish_stage(self._runtime, job_id, stage)
        except Exception:
            log.warning("publishing the next stage failed; a redelivery will", exc_info=True)
            return Outcome.RETRY
        return Outcome.ACK

    async def failed(self, error: ErrorInfo) -> Outcome:
        error = error.model_copy(update={"stage": self._lease.stage})
        job = await self._finish(
            lambda run: run.failed(error, utcnow()),
            lambda job: transitions.stage_failed(job, self._index(job), error, utcnow()),
        )
        self._ended(StageOutcome.FAILED, job, error.code)
        return Outcome.ACK

    async def cancelled(self) -> Outcome:
        job = await self._finish(
            lambda run: run.cancelled(utcnow()),
            lambda job: transitions.job_cancelled(job, self._index(job), utcnow()),
        )
        self._ended(StageOutcome.CANCELLED, job)
        return Outcome.ACK

    async def continuing(self) -> Outcome:
        job = await self._continue()
        if job is not None:
            await publish_stage(self._runtime, job.job_id, self._lease.stage)
        self._ended(StageOutcome.CONTINUED, job)
        return Outcome.ACK

    async def transient(self, error: ErrorInfo) -> Outcome:
        """A failure that may pass: try again, up to the stage's last attempt."""
        if self._lease.attempt >= self._lease.final_attempt:
            return await self.failed(
                exhausted_error(self._lease.stage, self._lease.attempt, error.message)
            )
        return await self._retried(error)

    async def unexpected(self, error: ErrorInfo) -> Outcome:
        """A bug in stage code: one more attempt (it may be a fluke of its inputs), then fail."""
        lease = self._lease
        if lease.attempt > lease.first_attempt or lease.attempt >= lease.final_attempt:
            return await self.failed(error.model_copy(update={"retryable": False}))
        return await self._retried(error)

    async def _retried(self, error: ErrorInfo) -> Outcome:
        error = error.model_copy(update={"stage": self._lease.stage})
        job = await self._retry(error)
        self._ended(StageOutcome.RETRYING, job, error.code)
        return Outcome.RETRY

    async def interrupted(self, checkpointed: bool) -> None:
        """Release the lease of a stage stopped by shutdown, so its redelivery starts at once."""
        if checkpointed:
            job = await self._continue()
        else:
            error = ErrorInfo(
                code="INTERRUPTED",
                message="The processor shut down during the stage.",
                retryable=True,
                stage=self._lease.stage,
            )
            job = await self._retry(error)
        log.warning("stage interrupted by shutdown; lease released")
        self._ended(StageOutcome.CONTINUED if checkpointed else StageOutcome.RETRYING, job)

    async def _continue(self) -> Job | None:
        return await self._finish(
            lambda run: run.continuing(utcnow()),
            lambda job: transitions.stage_continuing(job, self._index(job), utcnow()),
        )

    async def _retry(self, error: ErrorInfo) -> Job | None:
        return await self._finish(
            lambda run: run.retrying(error, utcnow()),
            lambda job: transitions.stage_retrying(job, self._index(job), error, utcnow()),
        )

    def _ended(self, outcome: StageOutcome, job: Job | None, error_code: str | None = None) -> None:
        """The `stage ended` line; not logged when the lease was lost (the new owner logs it)."""
        if job is not None:
            self._delivery.ended(self._lease, outcome, error_code)


def firestore_size(value: Any) -> int:
    """The bytes Firestore counts for a value (its documented storage-size rules)."""
    total, pending = 0, [value]
    while pending:  # a loop, not recursion: outputs may nest deeply
        item = pending.pop()
        if isinstance(item, str):
            total += len(item.encode()) + 1
        elif isinstance(item, bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(str(key).encode()) + 1 for key in item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        else:  # numbers and timestamps take 8 bytes; booleans and null 1
            total += 1 if item is None or isinstance(item, bool) else 8
    return total


def _check_size(what: str, value: Any) -> Any:
    size = firestore_size(value)
    if size > MAX_OUTPUT_BYTES:
        raise PermanentError(
            f"The {what} is {size:,} bytes, over the {MAX_OUTPUT_BYTES:,} bytes a Firestore "
            "document can hold; large outputs belong in Cloud Storage as artifacts.",
            code="OUTPUT_TOO_LARGE",
        )
    return value


def _refused(exc: InvalidArgument) -> PermanentError:
    """Firestore's refusal of a stage's result, with its own words (they name the size)."""
    text = f"Firestore refused to store the stage's result: {exc.message}"
    code = "OUTPUT_TOO_LARGE" if "bytes" in str(exc.message) else "OUTPUT_REJECTED"
    return PermanentError(text[:_MAX_REFUSAL_TEXT], code=code)
