"""What follows a job's end, done once by whichever side ended it (a processor finishing or
failing it, or the API cancelling a queued job)."""

from __future__ import annotations

from jobs import metric_logs
from jobs.models import Job, utcnow
from jobs.publisher import StagePublisher
from jobs.quotas import Quotas, release_quietly
from jobs.webhooks import announce


async def job_ended(job: Job, quotas: Quotas, publisher: StagePublisher) -> None:
    """Free the job's concurrency slot, ask for its webhook, log it for the metrics.

    Nothing for a job that has not ended; never raises (each step logs its own failure, and a
    missed slot release or webhook is caught up later: see `jobs.quotas`, `processor.sweeper`).
    """
    if not job.status.terminal:
        return
    await release_quietly(quotas, job.job_id, job.finished_at or utcnow())
    await announce(publisher, job)
    metric_logs.job_finished(job)
