"""What to do with a stage message Pub/Sub gave up delivering: fail its job, unless that message
was only a duplicate (the stage is done, or someone is running it) or the job already ended."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from jobs.cloud.store import Decision, JobStore
from jobs.contract import transitions
from jobs.contract.models import ErrorInfo, Job, StageMessage, utcnow
from jobs.contract.runs import Run, RunStatus

log = logging.getLogger(__name__)


def decide_undelivered(
    job: Job | None, run: Run, message: StageMessage, published_at: datetime | None
) -> Decision[Job | None]:
    """Fail the job of a dead-lettered stage message if it still waits on it.

    A message published before the stage was retried belongs to the failure the retry undid:
    the retry published a message of its own, so this one is ignored.
    """
    index = job.stage_index(message.stage) if job is not None else None
    if job is None or index is None or job.status.terminal:
        return Decision(None)
    now = utcnow()
    if run.done or run.is_live(now) or run.status == RunStatus.FAILED:
        return Decision(None)
    if published_at is not None and run.retried_at is not None and published_at < run.retried_at:
        return Decision(None)
    error = ErrorInfo(
        code="DELIVERY_FAILED",
        message="The stage could not be delivered to a processor; Pub/Sub gave up on it.",
        retryable=True,
        stage=message.stage,
    )
    failed = transitions.stage_failed(job, index, error, now)
    ended = run.failed(error, now).model_copy(update={"expire_at": job.expire_at})
    return Decision(failed, job=failed, runs={message.run_name: ended})


async def fail_undelivered(
    store: JobStore, message: StageMessage, published_at: datetime | None = None
) -> Job | None:
    """See `decide_undelivered`; the failed job, if this message failed it."""

    def decide(job: Job | None, runs: Mapping[str, Run]) -> Decision[Job | None]:
        return decide_undelivered(job, runs.get(message.run_name, Run()), message, published_at)

    failed_job = await store.decide(message.job_id, decide, runs=[message.run_name])
    log.warning(
        "dead-lettered stage message: %s",
        "job failed" if failed_job else "ignored",
        extra={"job_id": message.job_id, "stage": message.stage},
    )
    return failed_job
