"""Ending a lease: the run document and the job's transition in one atomic write, then what that
made due published (the stages it made ready, a fanned-out stage's items or reduce, or the same
stage or item again, to continue)."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from google.api_core.exceptions import InvalidArgument

from jobs.contract import transitions
from jobs.contract.errors import PermanentError
from jobs.contract.models import MAX_ITEMS, Artifact, ErrorInfo, Job, StageMessage, utcnow
from jobs.contract.pipeline import ItemFailure
from jobs.contract.runs import Lease, Run, exhausted_error
from jobs.telemetry.metric_logs import StageOutcome
from processor import outputs
from processor.costs import CostLedger, charged
from processor.delivery import Delivery
from processor.leases import Finished, JobUpdate, LeaseLost, item_failure
from processor.runtime import Outcome, Runtime, job_ended, publish

log = logging.getLogger(__name__)

# Firestore stores at most 1 MiB in a document; the job's own fields need the rest.
MAX_RESULT_BYTES = 1024 * 1024 - 64 * 1024
# Longest text of Firestore's refusal shown to users.
_MAX_REFUSAL_TEXT = 300

# The job's result, computed from every stage's output when the last stage ends.
ResultOf = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


class _ResultNeeded(Exception):
    """This stage turned out to be the last one: the job's result must be computed first."""


class Finisher:
    """Ends one lease (of a stage, its reduce, or one of its items) in one atomic write."""

    def __init__(
        self,
        runtime: Runtime,
        lease: Lease,
        costs: CostLedger,
        delivery: Delivery | None = None,
        item_policy: ItemFailure = ItemFailure.FAIL,
    ) -> None:
        self._runtime = runtime
        self._lease = lease
        self._costs = costs
        self._delivery = delivery or Delivery()
        self._item_policy = item_policy

    @property
    def _item(self) -> int | None:
        return self._lease.item

    async def _finish(self, ended: Callable[[Run], Run], update: JobUpdate) -> Finished | None:
        amounts = self._costs.unsaved()

        def update_charged(job: Job) -> Job:
            # The delivery's costs go in first, so the transition's `stages` carries them.
            return update(charged(job, self._index(job), amounts))

        try:
            finished = await self._runtime.leases.finish(self._lease, ended, update_charged)
        except LeaseLost:
            log.warning("lease lost before the attempt could be recorded; the new owner decides")
            return None
        self._costs.saved(amounts)
        assert finished.job is not None, "a lease given up raises LeaseLost"
        await job_ended(self._runtime, finished.job)
        return finished

    def _index(self, job: Job) -> int:
        index = job.stage_index(self._lease.stage)
        assert index is not None, "a claimed stage belongs to its job"
        return index

    async def succeeded(
        self,
        output: Any,
        artifacts: dict[str, Artifact],
        result_of: ResultOf,
        *,
        skipped: str | None = None,
        latest: list[Any] | None = None,
    ) -> Outcome:
        """Record the output (in Cloud Storage if it is big) and what it made due; `result_of`
        gives the job's result when this was the last stage; `latest`, what the delivery
        showed (StageContext.show_latest), goes into the job's `latest` in the same write.

        Raises PermanentError if Firestore cannot store the result: no attempt ever would.
        """
        kept = await outputs.stored(
            self._runtime.storage, self._lease.job_id, self._lease.run_name, output
        )
        result: dict[str, Any] | None = None

        def update(job: Job) -> Job:
            now = utcnow()
            index = self._index(job)
            job = job.model_copy(update={"artifacts": {**job.artifacts, **artifacts}})
            job = transitions.latest_shown(job, self._lease.stage, latest or [])
            if self._item is not None:
                return transitions.item_settled(job, index, self._item, now, failed=False)
            if transitions.all_done_but(job, index) and result is None:
                raise _ResultNeeded
            after = transitions.stage_succeeded(job, index, now, result=result, skipped=skipped)
            if after.cancel_requested and not after.status.terminal:
                after = transitions.job_cancelled(after, None, now)
            return after

        def ended(run: Run) -> Run:
            return run.succeeded(kept.value, utcnow(), kept.uri)

        try:
            try:
                finished = await self._finish(ended, update)
            except _ResultNeeded:
                result = checked_result(await result_of({self._lease.stage: output}))
                finished = await self._finish(ended, update)
        except InvalidArgument as exc:  # deterministic: the same write fails every time
            raise _refused(exc) from exc
        self._ended(StageOutcome.SKIPPED if skipped else StageOutcome.SUCCEEDED, finished)
        return await self._publish(finished.due if finished else [])

    async def fanned_out(self, items: list[Any]) -> Outcome:
        """The stage split its work into `items`: record them and publish one message each."""
        _check_items(items)

        def update(job: Job) -> Job:
            return transitions.stage_fanned_out(job, self._index(job), len(items), utcnow())

        policy = self._item_policy
        finished = await self._finish(lambda run: run.fanned_out(items, policy, utcnow()), update)
        self._ended(StageOutcome.FANNED_OUT, finished)
        if finished is None:
            return Outcome.ACK
        job_id, stage = self._lease.job_id, self._lease.stage
        due = [StageMessage(job_id=job_id, stage=stage, item=n) for n in range(len(items))]
        return await self._publish(due)

    async def _publish(self, due: list[StageMessage]) -> Outcome:
        """After the commit, nothing may fail the stage: a redelivery re-publishes what is due."""
        try:
            await publish(self._runtime, due)
        except Exception:
            log.warning("publishing what is due failed; a redelivery will", exc_info=True)
            return Outcome.RETRY
        return Outcome.ACK

    async def failed(self, error: ErrorInfo) -> Outcome:
        error = error.model_copy(update={"stage": self._lease.stage})

        def update(job: Job) -> Job:
            index, now = self._index(job), utcnow()
            if self._item is None:
                return transitions.stage_failed(job, index, error, now)
            return item_failure(job, index, self._item, error, self._item_policy, now)

        finished = await self._finish(lambda run: run.failed(error, utcnow()), update)
        self._ended(StageOutcome.FAILED, finished, error.code)
        return await self._publish(finished.due if finished else [])

    async def cancelled(self) -> Outcome:
        """The stage stopped because the user cancelled, or because the job ended otherwise; if
        the job was retried since, the stop cancels nothing: the lease is given up and a new
        delivery runs the stage (or item) again."""

        def update(job: Job) -> Job:
            now = utcnow()
            if job.cancel_requested:
                return transitions.job_cancelled(job, self._index(job), now)
            return self._stopped(job, now, lambda same, _index: same)

        finished = await self._finish(lambda run: run.cancelled(utcnow()), update)
        self._ended(StageOutcome.CANCELLED, finished)
        return Outcome.ACK

    async def continuing(self) -> Outcome:
        finished = await self._continue()
        if finished is not None:
            again = StageMessage(
                job_id=self._lease.job_id, stage=self._lease.stage, item=self._item
            )
            await publish(self._runtime, [again])
        self._ended(StageOutcome.CONTINUED, finished)
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
        finished = await self._retry(error)
        self._ended(StageOutcome.RETRYING, finished, error.code)
        return Outcome.RETRY

    async def interrupted(self, checkpointed: bool) -> None:
        """Release the lease of a stage stopped by shutdown, so its redelivery starts at once."""
        if checkpointed:
            finished = await self._continue()
        else:
            error = ErrorInfo(
                code="INTERRUPTED",
                message="The processor shut down during the stage.",
                retryable=True,
                stage=self._lease.stage,
            )
            finished = await self._retry(error)
        log.warning("stage interrupted by shutdown; lease released")
        self._ended(StageOutcome.CONTINUED if checkpointed else StageOutcome.RETRYING, finished)

    def _stopped(self, job: Job, now: datetime, stage_update: Callable[[Job, int], Job]) -> Job:
        """An attempt ended without an outcome: an item leaves the running ones, a stage says so."""
        if self._item is not None:
            return transitions.item_stopped(job, self._index(job), self._item, now)
        return stage_update(job, self._index(job))

    async def _continue(self) -> Finished | None:
        def update(job: Job) -> Job:
            now = utcnow()
            return self._stopped(job, now, lambda j, i: transitions.stage_continuing(j, i, now))

        return await self._finish(lambda run: run.continuing(utcnow()), update)

    async def _retry(self, error: ErrorInfo) -> Finished | None:
        def update(job: Job) -> Job:
            now = utcnow()
            return self._stopped(
                job, now, lambda j, i: transitions.stage_retrying(j, i, error, now)
            )

        return await self._finish(lambda run: run.retrying(error, utcnow()), update)

    def _ended(
        self, outcome: StageOutcome, finished: Finished | None, error_code: str | None = None
    ) -> None:
        """The `stage ended` line; not logged when the lease was lost (the new owner logs it)."""
        if finished is not None:
            self._delivery.ended(self._lease, outcome, error_code)


def checked_result(result: dict[str, Any]) -> dict[str, Any]:
    size = outputs.firestore_size(result)
    if size > MAX_RESULT_BYTES:
        raise PermanentError(
            f"The job's result is {size:,} bytes, over the {MAX_RESULT_BYTES:,} bytes a "
            "Firestore document can hold; large outputs belong in Cloud Storage as artifacts.",
            code="OUTPUT_TOO_LARGE",
        )
    return result


def _check_items(items: list[Any]) -> None:
    """Item descriptions live in the stage's run document: they must be few and small."""
    if not items or len(items) > MAX_ITEMS:
        raise PermanentError(
            f"A stage splits into 1 to {MAX_ITEMS} items, not {len(items)}.", code="BAD_ITEMS"
        )
    size = outputs.firestore_size(items)
    if size > outputs.INLINE_BYTES * 8:
        raise PermanentError(
            f"The items' descriptions take {size:,} bytes; describe each item briefly (a span, "
            "an id) and keep what it needs elsewhere.",
            code="OUTPUT_TOO_LARGE",
        )


def _refused(exc: InvalidArgument) -> PermanentError:
    """Firestore's refusal of a stage's result, with its own words (they name the size)."""
    text = f"Firestore refused to store the stage's result: {exc.message}"
    code = "OUTPUT_TOO_LARGE" if "bytes" in str(exc.message) else "OUTPUT_REJECTED"
    return PermanentError(text[:_MAX_REFUSAL_TEXT], code=code)
