"""Run one delivery of one stage: claim it, run it under a lease, commit, publish what is next.

This is the one wrapper around every stage (leases, heartbeats, timeouts, progress, error
mapping), and it knows nothing about HTTP: the push route only maps its Outcome to a status code.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from jobs.catalog import PIPELINES, StageSpec
from jobs.errors import JobCancelled, LongrunError, PermanentError
from jobs.logs import log_context
from jobs.models import ErrorInfo, Job, StageMessage, utcnow
from jobs.publisher import StagePublisher
from jobs.settings import Settings
from jobs.store import JobStore
from processor import transitions
from processor.context import StageContext
from processor.leases import (
    Claim,
    ClaimOutcome,
    JobUpdate,
    LeaseLost,
    Leases,
    cancelled_fields,
    done_fields,
    exhausted_error,
    failed_fields,
    retry_fields,
)
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
    leases: Leases
    pipelines: dict[str, PipelineImpl]


async def run_stage(message: StageMessage, runtime: Runtime) -> Outcome:
    """Handle one delivery of a stage message; safe to call any number of times for one message."""
    with log_context(job_id=message.job_id, stage=message.stage):
        claim = await runtime.leases.claim(message.job_id, message.stage)
        log.info("claim %s", claim.outcome.value, extra={"attempt": claim.attempt})
        match claim.outcome:
            case ClaimOutcome.CLAIMED:
                return await _execute(message, claim, runtime)
            case ClaimOutcome.BUSY:
                return Outcome.BUSY
            case ClaimOutcome.DONE if claim.republish:
                await _publish(runtime, message.job_id, claim.republish)
        return Outcome.ACK


async def _execute(message: StageMessage, claim: Claim, runtime: Runtime) -> Outcome:
    assert claim.job is not None
    job, index, attempt = claim.job, claim.index, claim.attempt
    finish = _Finisher(runtime, message, attempt)
    impl = runtime.pipelines.get(job.pipeline)
    function = impl.stage(message.stage) if impl else None
    if impl is None or function is None:
        error = ErrorInfo(
            code="UNKNOWN_STAGE",
            message=f"This processor cannot run {job.pipeline}/{message.stage}.",
            stage=message.stage,
        )
        return await finish.failed(error)
    outputs = await runtime.store.stage_outputs(job.job_id, [s.name for s in job.stages[:index]])
    try:
        output = await _run_under_lease(function, job, claim, outputs, runtime)
    except LeaseLost:
        log.warning("lease lost; another attempt owns the stage now")
        return Outcome.ACK
    except JobCancelled:
        return await finish.cancelled(index)
    except PermanentError as exc:
        return await finish.failed(_error_info(exc, message.stage, retryable=False))
    except Exception as exc:
        log.warning("attempt %d failed", attempt, exc_info=True)
        return await finish.transient(_error_info(exc, message.stage, retryable=True), index)
    result = impl.result({**outputs, message.stage: output})
    return await finish.succeeded(output, result)


async def _run_under_lease(
    function: StageFn,
    job: Job,
    claim: Claim,
    outputs: dict[str, Any],
    runtime: Runtime,
) -> Any:
    """Run the stage body with a heartbeat keeping the lease, its time limit, and progress."""
    stage = job.stages[claim.index]
    spec = _stage_spec(job, stage.name)
    reporter = ProgressReporter(
        _progress_writer(runtime.store, job, claim.index),
        runtime.settings.progress_interval_seconds,
    )
    async with _scratch_dir() as scratch:
        context = StageContext(
            job_id=job.job_id,
            stage=stage.name,
            input=job.input,
            outputs=outputs,
            attempt=claim.attempt,
            cursor=claim.cursor,
            scratch_dir=scratch,
            log=logging.LoggerAdapter(logging.getLogger(f"longrun.stage.{job.pipeline}")),
            _reporter=reporter,
            _read_cancel_requested=lambda: _cancel_requested(runtime.store, job.job_id),
            _save_cursor=lambda state: runtime.leases.checkpoint(
                job.job_id, stage.name, claim.attempt, state
            ),
        )
        body = asyncio.create_task(function(context))
        heartbeat = asyncio.create_task(
            _heartbeat(runtime, job.job_id, stage.name, claim.attempt, body)
        )
        try:
            async with asyncio.timeout(spec.timeout_seconds):
                return await body
        except TimeoutError:
            raise _StageTimeout(spec.timeout_seconds) from None
        except asyncio.CancelledError:
            if heartbeat.done() and heartbeat.result() is False:
                raise LeaseLost(f"{job.job_id}/{stage.name}") from None
            raise
        finally:
            heartbeat.cancel()
            body.cancel()
            await reporter.close()


class _StageTimeout(LongrunError):
    code = "STAGE_TIMEOUT"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The stage ran past its limit of {seconds:g} s.")


async def _heartbeat(
    runtime: Runtime, job_id: str, stage: str, attempt: int, body: asyncio.Task[Any]
) -> bool:
    """Extend the lease until cancelled; if it is lost, stop the stage body and return False."""
    while True:
        await asyncio.sleep(runtime.settings.heartbeat_seconds)
        try:
            held = await runtime.leases.heartbeat(job_id, stage, attempt)
        except Exception:
            log.warning("heartbeat failed; will try again", exc_info=True)
            continue
        if not held:
            body.cancel()
            return False


def _progress_writer(store: JobStore, job: Job, index: int) -> Any:
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


def _error_info(exc: Exception, stage: str, *, retryable: bool) -> ErrorInfo:
    if isinstance(exc, LongrunError):
        return ErrorInfo(code=exc.code, message=exc.message, retryable=retryable, stage=stage)
    text = f"Unexpected {type(exc).__name__}: {exc}"[:_MAX_ERROR_TEXT]
    return ErrorInfo(code="TRANSIENT", message=text, retryable=retryable, stage=stage)


async def _publish(runtime: Runtime, job_id: str, stage: str) -> None:
    await runtime.publisher.publish(StageMessage(job_id=job_id, stage=stage))


class _Finisher:
    """Ends one attempt: the run document and the job's transition in one transaction."""

    def __init__(self, runtime: Runtime, message: StageMessage, attempt: int) -> None:
        self._runtime = runtime
        self._message = message
        self._attempt = attempt

    async def _finish(self, run_fields: dict[str, Any], update: JobUpdate) -> Job | None:
        try:
            return await self._runtime.leases.finish(
                self._message.job_id, self._message.stage, self._attempt, run_fields, update
            )
        except LeaseLost:
            log.warning("lease lost before the attempt could be recorded; the new owner decides")
            return None

    async def succeeded(self, output: Any, result: dict[str, Any]) -> Outcome:
        stage = self._message.stage

        def update(job: Job) -> dict[str, Any]:
            index = _index(job, stage)
            fields = transitions.stage_succeeded(job, index, utcnow(), result=result)
            if job.cancel_requested and fields.get("status") is None:
                fields.update(transitions.job_cancelled(job, None, utcnow()))
            return fields

        job = await self._finish(done_fields(output), update)
        if job is not None and not job.status.terminal and job.stage is not None:
            await _publish(self._runtime, job.job_id, job.stage)
        log.info("stage succeeded", extra={"attempt": self._attempt})
        return Outcome.ACK

    async def failed(self, error: ErrorInfo) -> Outcome:
        stage = self._message.stage
        await self._finish(
            failed_fields(error),
            lambda job: transitions.stage_failed(job, _index(job, stage), error, utcnow()),
        )
        log.info("stage failed: %s", error.code, extra={"attempt": self._attempt})
        return Outcome.ACK

    async def cancelled(self, index: int) -> Outcome:
        await self._finish(
            cancelled_fields(), lambda job: transitions.job_cancelled(job, index, utcnow())
        )
        log.info("stage cancelled", extra={"attempt": self._attempt})
        return Outcome.ACK

    async def transient(self, error: ErrorInfo, index: int) -> Outcome:
        if self._attempt >= self._runtime.settings.max_attempts:
            final = exhausted_error(self._message.stage, self._attempt)
            final.message = f"{final.message} Last error: {error.message}"
            return await self.failed(final)
        await self._finish(
            retry_fields(error),
            lambda job: transitions.stage_retrying(job, index, error, utcnow()),
        )
        return Outcome.RETRY


def _index(job: Job, stage: str) -> int:
    index = job.stage_index(stage)
    assert index is not None, "a claimed stage belongs to its job"
    return index
