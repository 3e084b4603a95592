"""What a user may do to a job once it exists: cancel it, or retry it after a failure.

Both are Firestore transactions on the job document (and its current stage's run document), so
they cannot interleave badly with a processor claiming, finishing or failing the same stage.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Any, TypeVar

from google.cloud import firestore

from jobs import tracing, transitions
from jobs.budget import usd
from jobs.endings import job_ended
from jobs.errors import BudgetExceeded, Conflict, NotFound
from jobs.models import Job, JobStatus, StageMessage, utcnow
from jobs.publisher import StagePublisher
from jobs.quotas import Quotas
from jobs.runs import RunStatus, lease_is_live
from jobs.store import JobStore, expired, job_from_document, stamped, with_fields

log = logging.getLogger(__name__)

T = TypeVar("T")


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # nothing was running it: the job is cancelled now
    REQUESTED = "requested"  # a stage is running: it stops at its next check


async def _bounded(store: JobStore, transaction: Callable[..., Awaitable[T]]) -> T:
    """Run a transaction within the backend deadline. Its begin, commit and rollback calls take
    no timeout of their own, so the whole of it is bounded here; one that runs out of time is
    cancelled and left to roll back off the request (that waits on the backend too)."""
    attempt = asyncio.ensure_future(transaction(store.client.transaction()))
    try:
        with store.deadline.unavailable():
            return await asyncio.wait_for(asyncio.shield(attempt), store.deadline.seconds)
    finally:
        if not attempt.done():
            attempt.cancel()
            attempt.add_done_callback(_ended_off_request)


def _ended_off_request(attempt: asyncio.Future[Any]) -> None:
    if not attempt.cancelled() and attempt.exception() is not None:
        log.info("a transaction that ran out of time ended", exc_info=attempt.exception())


async def _owned_job(
    store: JobStore,
    tx: firestore.AsyncTransaction,
    ref: firestore.AsyncDocumentReference,
    owner: str,
) -> Job:
    """The job, read inside `tx`; another user's job is as absent as a missing one."""
    snapshot = await ref.get(transaction=tx, **store.deadline.options())
    job = job_from_document(snapshot.to_dict() or {}) if snapshot.exists else None
    if job is None or job.owner != owner or expired(job.expire_at):
        raise NotFound(f"No job {ref.id!r}.", code="JOB_NOT_FOUND")
    return job


async def cancel_job(
    store: JobStore, publisher: StagePublisher, quotas: Quotas, job_id: str, owner: str
) -> tuple[Job, CancelOutcome]:
    """Cancel at once if no stage holds a live lease; otherwise ask the running stage to stop."""
    job_ref = store.job_ref(job_id)
    ended_now = False

    @firestore.async_transactional
    async def cancel(tx: firestore.AsyncTransaction) -> tuple[Job, CancelOutcome]:
        nonlocal ended_now
        ended_now = False  # a retried transaction starts over
        job = await _owned_job(store, tx, job_ref, owner)
        if job.status == JobStatus.CANCELLED:
            return job, CancelOutcome.CANCELLED
        if job.status.terminal:
            raise Conflict(f"The job already {job.status.value}.", code="JOB_FINISHED")
        running = False
        if job.stage is not None:
            run_ref = store.run_ref(job_id, job.stage)
            run = (await run_ref.get(transaction=tx, **store.deadline.options())).to_dict() or {}
            running = lease_is_live(run, utcnow())
        fields: dict[str, object] = {"cancel_requested": True}
        if running:
            fields["message"] = "Cancelling..."
        else:
            index = job.stage_index(job.stage) if job.stage else None
            fields.update(transitions.job_cancelled(job, index, utcnow()))
        tx.update(job_ref, stamped(fields))
        ended_now = not running
        outcome = CancelOutcome.REQUESTED if running else CancelOutcome.CANCELLED
        return with_fields(job, fields), outcome

    result: tuple[Job, CancelOutcome] = await _bounded(store, cancel)
    if ended_now:
        with tracing.job_span("cancelled", result[0].traceparent, job_id=job_id):
            await job_ended(result[0], quotas, publisher)
    return result


async def retry_job(store: JobStore, publisher: StagePublisher, job_id: str, owner: str) -> Job:
    """Queue a failed job again from its first stage that did not succeed; done stages keep
    their outputs and are not run again. Each retried stage gets a fresh allowance of attempts."""
    job_ref = store.job_ref(job_id)

    @firestore.async_transactional
    async def retry(tx: firestore.AsyncTransaction) -> Job:
        job = await _owned_job(store, tx, job_ref, owner)
        if job.status != JobStatus.FAILED:
            raise Conflict(
                f"Only a failed job can be retried; this one is {job.status.value}.",
                code="JOB_NOT_FAILED",
            )
        if job.max_cost_usd is not None and job.cost_usd > job.max_cost_usd:
            raise BudgetExceeded(
                f"The job has spent {usd(job.cost_usd)}, over its budget of "
                f"{usd(job.max_cost_usd)}; running it again would only spend more."
            )
        pending = [stage.name for stage in job.stages if not stage.status.done]
        runs = {name: store.run_ref(job_id, name) for name in pending}
        options = store.deadline.options()
        snapshots = {name: await ref.get(transaction=tx, **options) for name, ref in runs.items()}
        fields = transitions.job_retried(job, utcnow())
        for name, ref in runs.items():
            run = snapshots[name].to_dict() or {}
            if run:
                tx.update(ref, {
                    "status": RunStatus.RETRYING.value,
                    "retry_base": int(run.get("attempts", 0)),
                    "retried_at": utcnow(),  # older messages of this stage are stale now
                    "updated_at": utcnow(),
                })  # fmt: skip
        tx.update(job_ref, stamped(fields))
        return with_fields(job, fields)

    job: Job = await _bounded(store, retry)
    assert job.stage is not None, "a failed job has a stage left to run"
    with tracing.job_span("retry", job.traceparent, job_id=job.job_id):
        try:
            await publisher.publish(StageMessage(job_id=job.job_id, stage=job.stage))
        except Exception:
            # The job is queued again already; the sweeper publishes a queued job left waiting.
            log.exception(
                "publishing a retried job failed; the sweeper will", extra={"job_id": job_id}
            )
    return job
