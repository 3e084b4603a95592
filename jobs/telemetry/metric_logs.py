"""The log lines Cloud Monitoring's log-based metrics count: a stage's end and a job's end.

The deploy scripts define the metrics on these exact messages and field names (stage duration,
queue wait, retries, jobs by terminal status): change them only together.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from jobs.contract.models import Job
from jobs.telemetry import tracing

log = logging.getLogger("longrun.metrics")

STAGE_ENDED = "stage ended"
JOB_FINISHED = "job finished"


class StageOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRYING = "retrying"  # this attempt failed transiently; Pub/Sub delivers it again
    SKIPPED = "skipped"
    CANCELLED = "cancelled"
    CONTINUED = "continued"  # the delivery's time budget ran out; a new delivery resumes it
    FANNED_OUT = "fanned_out"  # the stage split its work into items, each a message of its own


def stage_ended(
    *,
    job_id: str,
    stage: str,
    outcome: StageOutcome,
    attempt: int,
    duration_seconds: float,
    queue_wait_seconds: float | None,
    error_code: str | None = None,
    item: int | None = None,
) -> None:
    """One delivery of a stage (or one of its items) ended: how, after how long, after how long
    a wait in the queue."""
    fields = {
        "job_id": job_id,
        "stage": stage,
        "outcome": outcome.value,
        "attempt": attempt,
        "duration_seconds": round(duration_seconds, 6),
        "queue_wait_seconds": None if queue_wait_seconds is None else round(queue_wait_seconds, 6),
    }
    if error_code is not None:
        fields["error_code"] = error_code
    if item is not None:
        fields["item"] = item
    tracing.annotate(outcome=outcome.value, attempt=attempt)
    quiet = outcome not in (StageOutcome.FAILED, StageOutcome.RETRYING)
    log.log(logging.INFO if quiet else logging.WARNING, STAGE_ENDED, extra=fields)


def job_finished(job: Job) -> None:
    """The job reached a terminal status; logs nothing for a job that has not."""
    if not job.status.terminal:
        return
    log.info(
        JOB_FINISHED,
        extra={"job_id": job.job_id, "pipeline": job.pipeline, "status": job.status.value},
    )
