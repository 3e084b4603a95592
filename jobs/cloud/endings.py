"""What follows a job's end, done once by whichever side ended it (a processor finishing or
failing it, or the API cancelling a queued job)."""

from __future__ import annotations

import logging

from jobs.cloud.publisher import StagePublisher
from jobs.cloud.quotas import Quotas, release_quietly
from jobs.contract.models import Job, utcnow
from jobs.contract.webhooks import KIND_ATTRIBUTE, WEBHOOK_KIND, WebhookMessage
from jobs.telemetry import metric_logs

log = logging.getLogger(__name__)


async def job_ended(job: Job, quotas: Quotas, publisher: StagePublisher) -> None:
    """Free the job's concurrency slot, ask for its webhook, log it for the metrics.

    Nothing for a job that has not ended; never raises (each step logs its own failure, and a
    missed slot release or webhook is caught up later: see `jobs.cloud.quotas` and
    `processor.sweeper`).
    """
    if not job.status.terminal:
        return
    await release_quietly(quotas, job.job_id, job.finished_at or utcnow())
    await announce(publisher, job)
    metric_logs.job_finished(job)


async def announce(publisher: StagePublisher, job: Job) -> None:
    """Ask the processor to call the job's callback. A lost publish is not lost for good: the
    sweeper re-publishes webhooks left pending, so a failure here is only logged."""
    if job.callback_url is None or not job.status.terminal:
        return
    try:
        await publisher.publish(WebhookMessage(job_id=job.job_id), **{KIND_ATTRIBUTE: WEBHOOK_KIND})
    except Exception:
        log.exception(
            "publishing a webhook message failed; the sweeper will re-publish it",
            extra={"job_id": job.job_id},
        )
