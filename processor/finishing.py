"""Ending a stage's lease: the run document and the job's transition in one transaction, then
the next stage published (or the same one, to continue)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from jobs import transitions
from jobs.metric_logs import StageOutcome
from jobs.models import Artifact, ErrorInfo, Job, utcnow
from jobs.runs import Lease, Run, exhausted_error
from processor.costs import CostLedger
from processor.delivery import Delivery
from processor.leases import JobUpdate, LeaseLost
from processor.runtime import Outcome, Runtime, job_ended, publish_stage

log = logging.getLogger(__name__)


class Finisher:
    """Ends one lease: the run document and the job's transition in one transaction."""

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
        """Record the stage's output; `result_of` gives the job's result if this was the last."""

        def update(job: Job) -> Job:
            index = self._index(job)
            last = transitions.next_pending(job, index) is None
            result = result_of() if last else None
            now = utcnow()
            after = transitions.stage_succeeded(
                job, index, now, result=result, artifacts=artifacts, skipped=skipped
            )
            if after.cancel_requested and not after.status.terminal:
                after = transitions.job_cancelled(after, None, now)
            return after

        job = await self._finish(lambda run: run.succeeded(output, utcnow()), update)
        if job is not None and not job.status.terminal and job.stage is not None:
            await publish_stage(self._runtime, job.job_id, job.stage)
        self._ended(StageOutcome.SKIPPED if skipped else StageOutcome.SUCCEEDED, job)
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
        error = error.model_copy(update={"stage": self._lease.stage})
        if self._lease.attempt >= self._lease.final_attempt:
            return await self.failed(
                exhausted_error(self._lease.stage, self._lease.attempt, error.message)
            )
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
