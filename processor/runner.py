"""Run one delivery of one stage: claim it, run it under a lease, commit, publish what is next.

This is the one wrapper around every stage (leases, heartbeats, time limits, continuations,
progress, error mapping), and it knows nothing about HTTP: the push route only maps its Outcome
to a status code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from jobs import transitions
from jobs.catalog import PIPELINES, StageSpec
from jobs.errors import JobCancelled, LongrunError, PermanentError
from jobs.logs import log_context
from jobs.models import Artifact, ErrorInfo, Job, StageMessage, utcnow
from jobs.publisher import StagePublisher
from jobs.runs import (
    cancelled_fields,
    continuing_fields,
    done_fields,
    exhausted_error,
    failed_fields,
    retry_fields,
)
from jobs.settings import Settings
from jobs.storage import Storage
from jobs.store import JobStore
from processor.context import Skipped, StageContext
from processor.leases import Claim, ClaimOutcome, JobUpdate, Lease, LeaseLost, Leases
from processor.pipelines import PipelineImpl, StageFn
from processor.progress import ProgressReporter

log = logging.getLogger(__name__)

# Longest message from an unexpected exception that is shown to users.
_MAX_ERROR_TEXT = 300


class Outcome(StrEnum):
    ACK = "ack"  # done with this message: success, permanent failure, or nothing to do
    BUSY = "busy"  # another instance holds the stage: deliver again later
    RETRY = "retry"  # this attempt failed transiently: deliver again later


@dataclass
class Runtime:
    """What the runner needs, built once per processor instance."""

    settings: Settings
    store: JobStore
    publisher: StagePublisher
    storage: Storage
    leases: Leases
    pipelines: dict[str, PipelineImpl]
    # Stages running now, and lease releases of stages cut short by shutdown.
    running: set[asyncio.Task[Any]] = field(default_factory=set)
    releases: set[asyncio.Task[None]] = field(default_factory=set)

    async def drain(self, timeout_seconds: float) -> None:
        """Stop the stages still running at shutdown and wait (bounded) until their leases are
        released, so their redelivery can start at once on another instance."""
        for task in self.running:
            task.cancel()
        if self.running:
            await asyncio.wait(self.running, timeout=timeout_seconds)
        if self.releases:
            await asyncio.wait(self.releases, timeout=timeout_seconds)


class _StageTimeout(LongrunError):
    code = "STAGE_TIMEOUT"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The stage ran past its limit of {seconds:g} s.")


class _BudgetSpent(Exception):
    """The delivery's time budget ran out after the stage saved a cursor: continue later."""


async def run_stage(message: StageMessage, runtime: Runtime) -> Outcome:
    """Handle one delivery of a stage message; safe to call any number of times for one message."""
    with log_context(job_id=message.job_id, stage=message.stage):
        claim = await runtime.leases.claim(message.job_id, message.stage)
        attempt = claim.lease.attempt if claim.lease else None
        log.info("claim %s", claim.outcome.value, extra={"attempt": attempt})
        match claim.outcome:
            case ClaimOutcome.CLAIMED:
                return await _tracked(_execute(claim, runtime), runtime)
            case ClaimOutcome.BUSY:
                return Outcome.BUSY
            case ClaimOutcome.DONE if claim.republish:
                await _publish(runtime, message.job_id, claim.republish)
        return Outcome.ACK


async def _tracked(execution: Coroutine[Any, Any, Outcome], runtime: Runtime) -> Outcome:
    task = asyncio.current_task()
    assert task is not None
    runtime.running.add(task)
    try:
        return await execution
    finally:
        runtime.running.discard(task)


async def _execute(claim: Claim, runtime: Runtime) -> Outcome:
    assert claim.job is not None
    assert claim.lease is not None
    job, lease = claim.job, claim.lease
    finish = _Finisher(runtime, lease)
    impl = runtime.pipelines.get(job.pipeline)
    function = impl.stage(lease.stage) if impl else None
    if impl is None or function is None:
        message = f"This processor cannot run {job.pipeline}/{lease.stage}."
        return await finish.failed(ErrorInfo(code="UNKNOWN_STAGE", message=message))
    outputs = await runtime.store.stage_outputs(
        job.job_id, [s.name for s in job.stages[: claim.index]]
    )
    segment = _Segment(runtime, job, claim, outputs)
    try:
        output = await segment.run(function)
    except LeaseLost:
        log.warning("lease lost; another attempt owns the stage now")
        return Outcome.ACK
    except JobCancelled:
        return await finish.cancelled()
    except _BudgetSpent:
        return await finish.continuing()
    except PermanentError as exc:
        return await finish.failed(_error_info(exc, retryable=False))
    except asyncio.CancelledError:
        # The instance is shutting down (Runtime.drain, or uvicorn after its grace period): hand
        # the stage back at once instead of leaving the lease to expire. The release is a task
        # of its own, so a second cancel cannot cut it short; drain() waits for it.
        release = asyncio.create_task(finish.interrupted(segment.checkpointed))
        runtime.releases.add(release)
        release.add_done_callback(runtime.releases.discard)
        raise
    except Exception as exc:
        log.warning("attempt %d failed", lease.attempt, exc_info=True)
        return await finish.transient(_error_info(exc, retryable=True))
    skipped = output.reason if isinstance(output, Skipped) else None
    if skipped is not None:
        output = {"skipped": skipped}
    return await finish.succeeded(
        output,
        lambda: impl.result({**outputs, lease.stage: output}),
        segment.artifacts,
        skipped=skipped,
    )


class _Segment:
    """One delivery's run of a stage body: lease kept alive, time-limited, progress written."""

    def __init__(self, runtime: Runtime, job: Job, claim: Claim, outputs: dict[str, Any]) -> None:
        assert claim.lease is not None
        self._runtime = runtime
        self._job = job
        self._claim = claim
        self._lease = claim.lease
        self._outputs = outputs
        self.checkpointed = False
        self.artifacts: dict[str, Artifact] = {}

    async def _checkpoint(self, cursor: Any) -> None:
        await self._runtime.leases.checkpoint(self._lease, cursor)
        self.checkpointed = True

    async def run(self, function: StageFn) -> Any:
        settings = self._runtime.settings
        spec = _stage_spec(self._job, self._lease.stage)
        budget = settings.stage_time_budget_seconds
        limit = min(spec.timeout_seconds, budget)
        reporter = ProgressReporter(
            _progress_writer(self._runtime.store, self._job, self._claim.index),
            settings.progress_interval_seconds,
        )
        async with _scratch_dir() as scratch:
            context = self._context(reporter, scratch)
            self.artifacts = context.artifacts
            body = asyncio.create_task(function(context))
            heartbeat = asyncio.create_task(_heartbeat(self._runtime, self._lease, body))
            try:
                async with asyncio.timeout(limit):
                    return await body
            except TimeoutError:
                if budget < spec.timeout_seconds and self.checkpointed:
                    raise _BudgetSpent from None
                raise _StageTimeout(limit) from None
            except asyncio.CancelledError:
                if heartbeat.done() and _current_task_cancelling() == 0:
                    raise LeaseLost(self._lease.stage) from None
                raise
            finally:
                heartbeat.cancel()
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await body
                await reporter.close()

    def _context(self, reporter: ProgressReporter, scratch: Path) -> StageContext:
        job, lease, store = self._job, self._lease, self._runtime.store
        return StageContext(
            job_id=job.job_id,
            owner=job.owner,
            stage=lease.stage,
            input=job.input,
            outputs=self._outputs,
            attempt=lease.attempt,
            cursor=self._claim.cursor,
            scratch_dir=scratch,
            settings=self._runtime.settings,
            storage=self._runtime.storage,
            log=logging.LoggerAdapter(logging.getLogger(f"longrun.stage.{job.pipeline}")),
            _reporter=reporter,
            _read_cancel_requested=lambda: _cancel_requested(store, job.job_id),
            _save_cursor=self._checkpoint,
            _find_upload=lambda upload_id: store.get_upload(upload_id, job.owner),
        )


def _current_task_cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task else 0


async def _heartbeat(runtime: Runtime, lease: Lease, body: asyncio.Task[Any]) -> None:
    """Extend the lease until cancelled; if it is lost, stop the stage body."""
    while True:
        await asyncio.sleep(runtime.settings.heartbeat_seconds)
        try:
            held = await runtime.leases.heartbeat(lease)
        except Exception:
            log.warning("heartbeat failed; will try again", exc_info=True)
            continue
        if not held:
            body.cancel()
            return


def _progress_writer(
    store: JobStore, job: Job, index: int
) -> Callable[[float, str | None], Awaitable[None]]:
    async def write(fraction: float, message: str | None) -> None:
        await store.update(
            job.job_id, transitions.stage_progressed(job, index, fraction, message, utcnow())
        )

    return write


async def _cancel_requested(store: JobStore, job_id: str) -> bool:
    snapshot = await store.job_ref(job_id).get(field_paths=["cancel_requested"])
    return bool(snapshot.exists and snapshot.get("cancel_requested"))


@contextlib.asynccontextmanager
async def _scratch_dir() -> AsyncIterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="longrun-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)


def _stage_spec(job: Job, stage: str) -> StageSpec:
    spec = PIPELINES[job.pipeline]
    for planned in spec.plan(spec.input_model.model_validate(job.input)):
        if planned.name == stage:
            return planned
    raise PermanentError(f"Stage {stage!r} is not part of this job's plan.", code="UNKNOWN_STAGE")


def _error_info(exc: Exception, *, retryable: bool) -> ErrorInfo:
    if isinstance(exc, LongrunError):
        return ErrorInfo(code=exc.code, message=exc.message, retryable=retryable)
    text = f"Unexpected {type(exc).__name__}: {exc}"[:_MAX_ERROR_TEXT]
    return ErrorInfo(code="TRANSIENT", message=text, retryable=retryable)


async def _publish(runtime: Runtime, job_id: str, stage: str) -> None:
    await runtime.publisher.publish(StageMessage(job_id=job_id, stage=stage))


class _Finisher:
    """Ends one lease: the run document and the job's transition in one transaction."""

    def __init__(self, runtime: Runtime, lease: Lease) -> None:
        self._runtime = runtime
        self._lease = lease

    async def _finish(self, run_fields: dict[str, Any], update: JobUpdate) -> Job | None:
        try:
            return await self._runtime.leases.finish(self._lease, run_fields, update)
        except LeaseLost:
            log.warning("lease lost before the attempt could be recorded; the new owner decides")
            return None

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

        def update(job: Job) -> dict[str, Any]:
            index = self._index(job)
            last = transitions.next_pending(job, index) is None
            fields = transitions.stage_succeeded(
                job,
                index,
                utcnow(),
                result=result_of() if last else None,
                artifacts=artifacts,
                skipped=skipped,
            )
            if job.cancel_requested and "status" not in fields:
                fields.update(transitions.job_cancelled(job, None, utcnow()))
            return fields

        job = await self._finish(done_fields(output), update)
        if job is not None and not job.status.terminal and job.stage is not None:
            await _publish(self._runtime, job.job_id, job.stage)
        log.info("stage succeeded", extra={"attempt": self._lease.attempt})
        return Outcome.ACK

    async def failed(self, error: ErrorInfo) -> Outcome:
        error = error.model_copy(update={"stage": self._lease.stage})
        await self._finish(
            failed_fields(error),
            lambda job: transitions.stage_failed(job, self._index(job), error, utcnow()),
        )
        log.info("stage failed: %s", error.code, extra={"attempt": self._lease.attempt})
        return Outcome.ACK

    async def cancelled(self) -> Outcome:
        await self._finish(
            cancelled_fields(),
            lambda job: transitions.job_cancelled(job, self._index(job), utcnow()),
        )
        log.info("stage cancelled", extra={"attempt": self._lease.attempt})
        return Outcome.ACK

    async def continuing(self) -> Outcome:
        job = await self._finish(
            continuing_fields(),
            lambda job: transitions.stage_continuing(job, self._index(job), utcnow()),
        )
        if job is not None:
            await _publish(self._runtime, job.job_id, self._lease.stage)
        log.info("stage continues in a new delivery", extra={"attempt": self._lease.attempt})
        return Outcome.ACK

    async def transient(self, error: ErrorInfo) -> Outcome:
        error = error.model_copy(update={"stage": self._lease.stage})
        if self._lease.attempt >= self._lease.final_attempt:
            return await self.failed(
                exhausted_error(self._lease.stage, self._lease.attempt, error.message)
            )
        await self._finish(
            retry_fields(error),
            lambda job: transitions.stage_retrying(job, self._index(job), error, utcnow()),
        )
        return Outcome.RETRY

    async def interrupted(self, checkpointed: bool) -> None:
        """Release the lease of a stage stopped by shutdown, so its redelivery starts at once."""
        if checkpointed:
            await self._finish(
                continuing_fields(),
                lambda job: transitions.stage_continuing(job, self._index(job), utcnow()),
            )
        else:
            error = ErrorInfo(
                code="INTERRUPTED",
                message="The processor shut down during the stage.",
                retryable=True,
                stage=self._lease.stage,
            )
            await self._finish(
                retry_fields(error),
                lambda job: transitions.stage_retrying(job, self._index(job), error, utcnow()),
            )
        log.warning("stage interrupted by shutdown; lease released")
