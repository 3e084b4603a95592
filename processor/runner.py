"""Run one delivery of one stage: claim it, run it under a lease, commit, publish what is next.

This is the one wrapper around every stage (leases, heartbeats, time limits, continuations,
progress, error mapping), and it knows nothing about HTTP: the push route only maps its Outcome
to a status code.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from datetime import datetime
from typing import Any

from jobs.contract.errors import JobCancelled
from jobs.contract.models import ErrorInfo, StageMessage
from jobs.contract.runs import Lease
from jobs.telemetry import tracing
from jobs.telemetry.logs import log_context
from pipelines.catalog import PIPELINES
from processor.context import Skipped
from processor.costs import CostLedger
from processor.delivery import Delivery
from processor.failures import Failure, classify, error_info
from processor.finishing import Finisher
from processor.leases import Claim, ClaimOutcome, LeaseLost
from processor.runtime import Outcome, Runtime, job_ended, publish_stage
from processor.segment import BudgetSpent, Segment

log = logging.getLogger(__name__)


async def run_stage(
    message: StageMessage, runtime: Runtime, published_at: datetime | None = None
) -> Outcome:
    """Handle one delivery of a stage message; safe to call any number of times for one message.

    `published_at` (when Pub/Sub took the message) gives the stage's queue wait in its logs.
    """
    with log_context(job_id=message.job_id, stage=message.stage):
        claim = await runtime.leases.claim(message.job_id, message.stage)
        delivery = Delivery(published_at)
        attempt = claim.lease.attempt if claim.lease else None
        tracing.annotate(claim=claim.outcome.value, attempt=attempt)
        log.info("claim %s", claim.outcome.value, extra={"attempt": attempt})
        match claim.outcome:
            case ClaimOutcome.CLAIMED:
                return await _tracked(_execute(claim, runtime, delivery), runtime)
            case ClaimOutcome.BUSY:
                return Outcome.BUSY
            case ClaimOutcome.DONE if claim.republish:
                await publish_stage(runtime, message.job_id, claim.republish)
            case ClaimOutcome.CANCELLED | ClaimOutcome.EXHAUSTED if claim.job is not None:
                await job_ended(runtime, claim.job)  # this claim ended the job
        return Outcome.ACK


async def _tracked(execution: Coroutine[Any, Any, Outcome], runtime: Runtime) -> Outcome:
    task = asyncio.current_task()
    assert task is not None
    runtime.running.add(task)
    try:
        return await execution
    finally:
        runtime.running.discard(task)


async def _execute(claim: Claim, runtime: Runtime, delivery: Delivery) -> Outcome:
    assert claim.job is not None
    assert claim.lease is not None
    job, lease = claim.job, claim.lease
    costs = CostLedger(job, claim.index, runtime.settings)  # the clock starts at the claim
    finish = Finisher(runtime, lease, costs, delivery)
    pipeline = PIPELINES.get(job.pipeline)
    spec = pipeline.stage_spec(job.input, lease.stage) if pipeline else None
    function = runtime.functions.stage(spec.function) if spec else None
    if pipeline is None or spec is None or function is None:
        message = f"This processor cannot run {job.pipeline}/{lease.stage}."
        return await finish.failed(ErrorInfo(code="UNKNOWN_STAGE", message=message))
    result = runtime.functions.result(pipeline.result)
    segment: Segment | None = None
    try:
        outputs = await runtime.store.stage_outputs(
            job.job_id, [s.name for s in job.stages[: claim.index]]
        )
        segment = Segment(runtime, job, claim, spec, outputs, costs)
        output = await segment.run(function)
        skipped = output.reason if isinstance(output, Skipped) else None
        if skipped is not None:
            output = {"skipped": skipped}
        return await finish.succeeded(
            output,
            lambda: result({**outputs, lease.stage: output}),
            segment.artifacts,
            skipped=skipped,
        )
    except LeaseLost:
        log.warning("lease lost; another attempt owns the stage now")
        return Outcome.ACK
    except JobCancelled:
        return await finish.cancelled()
    except BudgetSpent:
        return await finish.continuing()
    except asyncio.CancelledError:
        # The instance is shutting down (Runtime.drain, or uvicorn after its grace period): hand
        # the stage back at once instead of leaving the lease to expire. The release is a task
        # of its own, so a second cancel cannot cut it short; drain() waits for it.
        checkpointed = segment is not None and segment.checkpointed
        release = asyncio.create_task(finish.interrupted(checkpointed))
        runtime.releases.add(release)
        release.add_done_callback(runtime.releases.discard)
        raise
    except Exception as exc:
        return await _failed(exc, finish, lease)


async def _failed(exc: Exception, finish: Finisher, lease: Lease) -> Outcome:
    """End an attempt that raised, as `processor.failures` classifies it."""
    failure = classify(exc)
    error = error_info(exc, failure, job_id=lease.job_id, stage=lease.stage)
    match failure:
        case Failure.PERMANENT:
            return await finish.failed(error)
        case Failure.TRANSIENT:
            log.warning("attempt %d failed", lease.attempt, exc_info=exc)
            return await finish.transient(error)
        case Failure.UNEXPECTED:
            log.error("attempt %d failed unexpectedly", lease.attempt, exc_info=exc)
            return await finish.unexpected(error)
