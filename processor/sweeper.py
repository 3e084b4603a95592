"""The net under lost messages: re-publish work that nobody is doing and nothing will deliver,
and the webhooks of finished jobs whose message was lost (processor/webhooks.py).

Cloud Scheduler calls it each minute in production (`longrun dev` does locally). Re-publishing is
always safe: a stage that turns out to be done or leased answers its duplicate without running.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from jobs.cloud.endings import announce
from jobs.cloud.publisher import StagePublisher
from jobs.cloud.store import JobStore
from jobs.contract import transitions
from jobs.contract.models import Job, JobStatus, StageMessage, StageStatus, utcnow
from jobs.contract.runs import Run
from jobs.contract.settings import Settings
from jobs.telemetry import tracing

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    examined: int = 0
    republished: list[StageMessage] = field(default_factory=list)
    webhooks: list[str] = field(default_factory=list)  # jobs whose webhook was re-published


async def sweep(store: JobStore, publisher: StagePublisher, settings: Settings) -> SweepReport:
    """Find queued jobs gone stale and running jobs whose stages nobody works on; re-publish."""
    now = utcnow()
    stale = now - timedelta(seconds=settings.sweep_stale_seconds)
    quiet = now - timedelta(seconds=min(settings.lease_seconds, settings.sweep_stale_seconds))
    report = SweepReport()
    candidates = await store.jobs_untouched_since(JobStatus.QUEUED, stale)
    candidates += await store.jobs_untouched_since(JobStatus.RUNNING, quiet)
    for job in candidates:
        report.examined += 1
        for stage in await _abandoned(store, job, now, stale):
            message = StageMessage(job_id=job.job_id, stage=stage)
            with tracing.job_span("sweeper re-publish", job.traceparent, job_id=job.job_id):
                await publisher.publish(message)
                log.info("sweeper re-published a stage", extra=message.model_dump())
            report.republished.append(message)
    for job in await store.jobs_with_pending_webhooks():
        # A delivery in progress writes each attempt, so one untouched this long lost its message.
        if not job.status.terminal or job.updated_at >= stale:
            continue
        with tracing.job_span("sweeper re-publish webhook", job.traceparent, job_id=job.job_id):
            await announce(publisher, job)
            log.info("sweeper re-published a webhook", extra={"job_id": job.job_id})
        report.webhooks.append(job.job_id)
    return report


async def _abandoned(store: JobStore, job: Job, now: datetime, stale: datetime) -> list[str]:
    """The job's stages that wait on a message that may never come. A fanned-out stage counts
    while its items settle: the re-published stage message re-publishes its lost items."""
    waiting = [
        stage.name
        for stage in job.stages
        if stage.status in (StageStatus.RUNNING, StageStatus.RETRYING)
    ] + transitions.ready(job)
    if job.status == JobStatus.QUEUED:
        return transitions.ready(job)
    runs = await store.get_runs(job.job_id, waiting)
    return [name for name in waiting if _lost(runs.get(name), job, now, stale)]


def _lost(run: Run | None, job: Job, now: datetime, stale: datetime) -> bool:
    if run is None:
        return job.updated_at < stale  # the stage's message was published but never claimed
    if run.done or run.is_live(now):
        return False
    if run.lease_owner or run.items is not None:
        return True  # its holder died, or its items may have lost messages
    return run.updated_at is None or run.updated_at < stale  # a retry or continuation lost
