"""What to do with a stage message Pub/Sub gave up delivering: fail its job, unless that message
was only a duplicate (the stage is done, or someone is running it) or the job already ended."""

from __future__ import annotations

import logging
from datetime import datetime

from google.cloud import firestore

from jobs import transitions
from jobs.models import ErrorInfo, Job, StageMessage, utcnow
from jobs.runs import RunStatus, failed_fields, lease_is_live
from jobs.store import JobStore, job_from_document, stamped, with_fields

log = logging.getLogger(__name__)


async def fail_undelivered(
    store: JobStore, message: StageMessage, published_at: datetime | None = None
) -> Job | None:
    """Fail the job of a dead-lettered stage message if it still waits on it; the failed job.

    A message published before the stage was retried belongs to the failure the retry undid:
    the retry published a message of its own, so this one is ignored.
    """
    job_ref = store.job_ref(message.job_id)
    run_ref = store.run_ref(message.job_id, message.stage)

    @firestore.async_transactional
    async def fail(tx: firestore.AsyncTransaction) -> Job | None:
        snapshot = await job_ref.get(transaction=tx)
        if not snapshot.exists:
            return None
        job = job_from_document(snapshot.to_dict() or {})
        index = job.stage_index(message.stage)
        if index is None or job.status.terminal:
            return None
        run = (await run_ref.get(transaction=tx)).to_dict() or {}
        now = utcnow()
        if run.get("status") == RunStatus.DONE or lease_is_live(run, now):
            return None
        retried_at = run.get("retried_at")
        if published_at is not None and retried_at is not None and published_at < retried_at:
            return None
        error = ErrorInfo(
            code="DELIVERY_FAILED",
            message="The stage could not be delivered to a processor; Pub/Sub gave up on it.",
            retryable=True,
            stage=message.stage,
        )
        fields = transitions.stage_failed(job, index, error, now)
        tx.update(job_ref, stamped(fields))
        tx.set(run_ref, {**failed_fields(error), "expire_at": job.expire_at}, merge=True)
        return with_fields(job, fields)

    failed_job: Job | None = await fail(store.client.transaction())
    log.warning(
        "dead-lettered stage message: %s",
        "job failed" if failed_job else "ignored",
        extra={"job_id": message.job_id, "stage": message.stage},
    )
    return failed_job
