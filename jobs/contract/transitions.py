"""How a job document changes when one of its stages starts, progresses, ends or fails.

Pure functions: each takes the job as last read and returns the job as it should be written,
never touching the one it was given. The store (jobs.cloud.store) writes what differs, so every rule
about the job document lives here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobs.contract.models import (
    Artifact,
    ErrorInfo,
    Job,
    JobStatus,
    StageState,
    StageStatus,
    WebhookDelivery,
)

# Below this much progress an ETA is a guess from too little data.
_ETA_MIN_PROGRESS = 0.02


def overall_progress(stages: list[StageState]) -> float:
    """Progress weighted over stages: done stages count fully, the others by their own progress."""
    total = sum(stage.weight for stage in stages) or 1.0
    earned = sum(stage.weight * (1.0 if stage.status.done else stage.progress) for stage in stages)
    return min(1.0, earned / total)


def eta_seconds(job: Job, progress: float, now: datetime) -> float | None:
    """Seconds left if the job keeps its pace so far; None until there is a pace to go by."""
    if job.started_at is None or progress < _ETA_MIN_PROGRESS or progress >= 1.0:
        return None
    elapsed = (now - job.started_at).total_seconds()
    return round(elapsed * (1.0 - progress) / progress, 1)


def _copy(job: Job) -> Job:
    return job.model_copy(deep=True)


def _progressed(job: Job, now: datetime) -> None:
    # Never backwards: a retried stage starts again from zero, the job's progress does not.
    job.progress = max(job.progress, overall_progress(job.stages))
    job.eta_seconds = eta_seconds(job, job.progress, now)


def _ended(job: Job, status: JobStatus, message: str, now: datetime) -> None:
    """A terminal transition: the job ends, and its callback (if any) becomes due."""
    job.status = status
    job.message = message
    job.finished_at = now
    if job.callback_url is not None:
        job.webhook = WebhookDelivery()


def stage_started(
    job: Job, index: int, attempt: int, now: datetime, *, resumed: bool = False
) -> Job:
    """A delivery took the stage's lease: a new attempt, or (resumed) the same one continuing."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.RUNNING
    stage.attempts = attempt
    stage.started_at = stage.started_at or now
    if not resumed:
        stage.progress = 0.0
        stage.message = None
    label = stage.label if attempt == 1 else f"{stage.label} (attempt {attempt})"
    job.status = JobStatus.RUNNING
    job.stage = stage.name
    job.message = f"{label}: continuing" if resumed else label
    job.started_at = job.started_at or now
    _progressed(job, now)
    return job


def stage_progressed(
    job: Job, index: int, fraction: float, message: str | None, now: datetime
) -> Job:
    job = _copy(job)
    stage = job.stages[index]
    stage.progress = min(1.0, max(0.0, fraction))
    stage.message = message
    job.message = f"{stage.label}: {message}" if message else stage.label
    _progressed(job, now)
    return job


def stage_succeeded(
    job: Job,
    index: int,
    now: datetime,
    *,
    result: dict[str, Any] | None,
    artifacts: dict[str, Artifact] | None = None,
    skipped: str | None = None,
) -> Job:
    """The stage is done, or had nothing to do (`skipped` says why); the job moves on, or
    succeeds with `result`."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.SKIPPED if skipped else StageStatus.SUCCEEDED
    stage.message = skipped  # a finished stage's last progress note is stale
    stage.progress = 1.0
    stage.finished_at = now
    stage.error = None
    job.artifacts = {**job.artifacts, **(artifacts or {})}
    next_index = next_pending(job, index)
    if next_index is None:
        _ended(job, JobStatus.SUCCEEDED, "Done", now)
        job.stage = None
        job.result = result
        _progressed(job, now)
        job.eta_seconds = None
        return job
    following = job.stages[next_index]
    job.stage = following.name
    job.message = f"Queued: {following.label}"
    _progressed(job, now)
    return job


def next_pending(job: Job, index: int) -> int | None:
    """The first stage after `index` that is not done yet."""
    for position in range(index + 1, len(job.stages)):
        if not job.stages[position].status.done:
            return position
    return None


def stage_failed(job: Job, index: int, error: ErrorInfo, now: datetime) -> Job:
    """The stage failed for good, and so does the job."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.FAILED
    stage.finished_at = now
    stage.error = error
    _ended(job, JobStatus.FAILED, f"{stage.label} failed: {error.message}", now)
    job.error = error
    _progressed(job, now)
    job.eta_seconds = None
    return job


def stage_retrying(job: Job, index: int, error: ErrorInfo, now: datetime) -> Job:
    """The attempt failed but another may succeed; the stage waits for its redelivery."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.RETRYING
    stage.error = error
    job.message = f"{stage.label}: retrying after an error ({error.message})"
    _progressed(job, now)
    return job


def job_cancelled(job: Job, index: int | None, now: datetime) -> Job:
    """The user's cancel took effect: the current stage (if any) stops, nothing else runs."""
    job = _copy(job)
    if index is not None and not job.stages[index].status.done:
        job.stages[index].status = StageStatus.CANCELLED
        job.stages[index].finished_at = now
    _ended(job, JobStatus.CANCELLED, "Cancelled", now)
    job.eta_seconds = None
    return job


def cancel_requested(job: Job) -> Job:
    """The user asked to cancel while a stage runs: it stops at its next check."""
    job = _copy(job)
    job.cancel_requested = True
    job.message = "Cancelling..."
    return job


def stage_continuing(job: Job, index: int, now: datetime) -> Job:
    """The stage used its time budget for this delivery and resumes from its cursor in the next."""
    job = _copy(job)
    job.message = f"{job.stages[index].label}: continuing"
    _progressed(job, now)
    return job


def job_retried(job: Job, now: datetime) -> Job:
    """A failed job goes back to the queue at its first stage that is not done; done ones stay."""
    job = _copy(job)
    for stage in job.stages:
        if not stage.status.done:
            stage.status = StageStatus.PENDING
            stage.progress = 0.0
            stage.message = None
            stage.error = None
            stage.finished_at = None
    first = next(stage for stage in job.stages if not stage.status.done)
    job.status = JobStatus.QUEUED
    job.stage = first.name
    job.message = f"Queued again: {first.label}"
    job.error = None
    job.finished_at = None
    job.cancel_requested = False
    job.eta_seconds = None
    job.webhook = None  # the next end of the job gets a webhook of its own
    return job
