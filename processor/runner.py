"""Run one delivery of one stage (or item): claim it, run it under a lease, commit, publish what
is next.

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

from jobs.contract import transitions
from jobs.contract.errors import JobCancelled, PermanentError
from jobs.contract.models import ErrorInfo, Job, StageMessage, run_name
from jobs.contract.pipeline import ItemFailure, StageSpec
from jobs.contract.runs import Lease
from jobs.telemetry import tracing
from jobs.telemetry.logs import log_context
from pipelines.catalog import PIPELINES
from processor import outputs
from processor.context import Inputs, Items, Skipped
from processor.costs import CostLedger
from processor.delivery import Delivery
from processor.failures import Failure, classify, error_info
from processor.finishing import Finisher
from processor.leases import Claim, ClaimOutcome, LeaseLost, Phase
from processor.runtime import Outcome, Runtime, job_ended, publish
from processor.segment import BudgetSpent, Segment

log = logging.getLogger(__name__)


async def run_stage(
    message: StageMessage, runtime: Runtime, published_at: datetime | None = None
) -> Outcome:
    """Handle one delivery of a stage (or item) message; safe to call any number of times for
    one message.

    `published_at` (when Pub/Sub took the message) gives the stage's queue wait in its logs.
    """
    item = {} if message.item is None else {"item": str(message.item)}
    with log_context(job_id=message.job_id, stage=message.stage, **item):
        claim = await runtime.leases.claim(message)
        delivery = Delivery(published_at)
        attempt = claim.lease.attempt if claim.lease else None
        tracing.annotate(claim=claim.outcome.value, attempt=attempt)
        log.info("claim %s", claim.outcome.value, extra={"attempt": attempt})
        match claim.outcome:
            case ClaimOutcome.CLAIMED:
                return await _tracked(_execute(claim, runtime, delivery), runtime)
            case ClaimOutcome.BUSY:
                return Outcome.BUSY
            case ClaimOutcome.FANNED_OUT:
                await _republish_items(runtime, message, claim.items)
            case ClaimOutcome.CANCELLED | ClaimOutcome.EXHAUSTED if claim.job is not None:
                await job_ended(runtime, claim.job)  # this claim may have ended the job
        if claim.republish:  # what an earlier delivery made due, in case its publish was lost
            await publish(runtime, claim.republish)
        return Outcome.ACK


async def _republish_items(runtime: Runtime, message: StageMessage, count: int) -> None:
    """A stage message while its items settle: publish again the items that may have lost
    theirs (the sweeper's net, and a retried job's way back to its failed items)."""
    waiting = await runtime.leases.unsettled_items(message.job_id, message.stage, count)
    due = [StageMessage(job_id=message.job_id, stage=message.stage, item=n) for n in waiting]
    await publish(runtime, due)
    log.info("items re-published", extra={"items": len(due)})


async def _tracked(execution: Coroutine[Any, Any, Outcome], runtime: Runtime) -> Outcome:
    task = asyncio.current_task()
    assert task is not None
    runtime.running.add(task)
    try:
        return await execution
    finally:
        runtime.running.discard(task)


def _function(spec: StageSpec, phase: Phase) -> str:
    """The "module:function" a claimed phase of the stage runs."""
    if phase == Phase.STAGE or spec.fan_out is None:
        return spec.function
    return spec.fan_out.item if phase == Phase.ITEM else spec.fan_out.reduce


async def _execute(claim: Claim, runtime: Runtime, delivery: Delivery) -> Outcome:
    assert claim.job is not None
    assert claim.lease is not None
    job, lease = claim.job, claim.lease
    costs = CostLedger(job, runtime.settings)  # the clock starts at the claim
    pipeline = PIPELINES.get(job.pipeline)
    spec = pipeline.stage_spec(job.input, lease.stage) if pipeline else None
    policy = spec.fan_out.on_item_failure if spec and spec.fan_out else ItemFailure.FAIL
    finish = Finisher(runtime, lease, costs, delivery, policy)
    function = runtime.functions.stage(_function(spec, claim.phase)) if spec else None
    if pipeline is None or spec is None or function is None:
        message = f"This processor cannot run {job.pipeline}/{lease.stage}."
        return await finish.failed(ErrorInfo(code="UNKNOWN_STAGE", message=message))
    result = runtime.functions.result(pipeline.result)
    segment: Segment | None = None
    try:
        inputs = await _inputs(runtime, job, claim)
        segment = Segment(runtime, job, claim, spec, inputs, costs)
        output = await segment.run(function)
        if isinstance(output, Items):
            if claim.phase != Phase.STAGE or spec.fan_out is None:
                raise PermanentError(
                    f"Stage {lease.stage} returned items but its spec declares no fan_out.",
                    code="BAD_ITEMS",
                )
            return await finish.fanned_out(output.items)
        skipped = output.reason if isinstance(output, Skipped) else None
        if skipped is not None:
            output = {"skipped": skipped}

        async def result_of(latest: dict[str, Any]) -> dict[str, Any]:
            others = [s.name for s in job.stages if s.name not in latest]
            stored = await outputs.load(runtime.store, runtime.storage, job.job_id, others)
            return result({**stored, **latest})

        return await finish.succeeded(
            output, segment.artifacts, result_of, skipped=skipped, latest=segment.latest
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


async def _inputs(runtime: Runtime, job: Job, claim: Claim) -> Inputs:
    """What the claimed phase reads: the outputs of the stages the stage needs (directly or
    through others), and for a reduce its items' outputs in order (None: failed, a gap)."""
    assert claim.lease is not None
    job_id, stage = job.job_id, claim.lease.stage
    upstream = transitions.upstream(job, claim.index)
    needed = await outputs.load(runtime.store, runtime.storage, job_id, upstream)
    if claim.phase != Phase.REDUCE:
        return Inputs(needed)
    names = [run_name(stage, n) for n in range(claim.items)]
    done = await outputs.load(runtime.store, runtime.storage, job_id, names)
    return Inputs(needed, [done.get(name) for name in names])


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
