"""The net under lost messages: re-publish work that nobody is doing and nothing will deliver,
and the webhooks of finished jobs whose message was lost (processor/webhooks.py).

Cloud Scheduler calls it each minute in production (`longrun dev` does locally). Re-publishing is
always safe: a stage that turns out to be done or leased answers its duplicate without running.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from google.cloud.firestore import FieldFilter

from jobs import tracing
from jobs.models import Job, JobStatus, StageMessage, WebhookStatus, utcnow
from jobs.publisher import StagePublisher
from jobs.runs import RunStatus, lease_is_live
from jobs.settings import Settings
from jobs.store import JobStore, job_from_document
from jobs.webhooks import announce

log = logging.getLogger(__name__)

# Bounds one sweep's work; what is left is found by the next sweep.
SWEEP_BATCH = 500


@dataclass
class SweepReport:
    examined: int = 0
    republished: list[StageMessage] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)  # jobs whose webhook was re-published


async def sweep(store: JobStore, publisher: StagePublisher, settings: Settings) -> SweepReport:
    """Find queued jobs gone stale and running jobs whose stage nobody works on; re-publish."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.sweep_stale_seconds)
    quiet = now - timedelta(seconds=min(settings.lease_seconds, settings.sweep_stale_seconds))
    report = SweepReport()
    candidates = await _jobs(store, JobStatus.QUEUED, stale)
    candidates += await _jobs(store, JobStatus.RUNNING, quiet)
    for job in candidates:
        report.examined += 1
        if job.stage is not None and await _abandoned(store, job, now, stale):
            message = StageMessage(job_id=job.job_id, stage=job.stage)
            with tracing.job_span("sweeper re-publish", job.traceparent, job_id=job.job_id):
                await publisher.publish(message)
                log.info("sweeper re-published a stage", extra=message.model_dump())
            report.republished.append(message)
    for job in await _pending_webhooks(store, stale):
        with tracing.job_span("sweeper re-publish webhook", job.traceparent, job_id=job.job_id):
            await announce(publisher, job)
            log.info("sweeper re-published a webhook", extra={"job_id": job.job_id})
        report.webhooks.append(job.job_id)
    return report


async def _jobs(store: JobStore, status: JobStatus, updated_before: datetime) -> list[Job]:
    """Jobs in `status` whose document has not changed since `updated_before`."""
    query = (
        store.jobs.where(filter=FieldFilter("status", "==", status.value))
        .where(filter=FieldFilter("updated_at", "<", updated_before))
        .limit(SWEEP_BATCH)
    )
    return [job_from_document(snapshot.to_dict() or {}) async for snapshot in query.stream()]


async def _pending_webhooks(store: JobStore, updated_before: datetime) -> list[Job]:
    """Finished jobs whose webhook is pending and untouched since `updated_before`: a delivery
    in progress writes each attempt, so these lost their message."""
    query = store.jobs.where(
        filter=FieldFilter("webhook.status", "==", WebhookStatus.PENDING.value)
    ).limit(SWEEP_BATCH)
    jobs = [job_from_document(snapshot.to_dict() or {}) async for snapshot in query.stream()]
    return [job for job in jobs if job.status.terminal and job.updated_at < updated_before]


async def _abandoned(store: JobStore, job: Job, now: datetime, stale: datetime) -> bool:
    """Whether the job's current stage waits on a message that may never come."""
    if job.status == JobStatus.QUEUED:
        return True
    assert job.stage is not None
    snapshot = await store.run_ref(job.job_id, job.stage).get()
    run = snapshot.to_dict() or {}
    if not run:
        return job.updated_at < stale  # the stage's message was published but never claimed
    if run.get("status") == RunStatus.DONE or lease_is_live(run, now):
        return False
    if run.get("lease_owner"):
        return True  # the lease expired with nobody on it: its holder died
    updated = run.get("updated_at")
    return updated is None or updated < stale  # a retry or continuation that never came
