"""How a job document changes when one of its stages starts, progresses, ends or fails.

Pure functions: each takes the job as last read and returns the fields to write. The runner
writes them (inside the lease transactions), so every rule about the job document lives here.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobs.models import Artifact, ErrorInfo, Job, JobStatus, StageState, StageStatus
from jobs.webhooks import webhook_pending

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


def _stages_field(job: Job) -> list[dict[str, Any]]:
    return [stage.model_dump(mode="python") for stage in job.stages]


def _progress_fields(job: Job, now: datetime) -> dict[str, Any]:
    # Never backwards: a retried stage starts again from zero, the job's progress does not.
    progress = max(job.progress, overall_progress(job.stages))
    job.progress = progress
    return {
        "stages": _stages_field(job),
        "progress": progress,
        "eta_seconds": eta_seconds(job, progress, now),
    }


def stage_started(
    job: Job, index: int, attempt: int, now: datetime, *, resumed: bool = False
) -> dict[str, Any]:
    """A delivery took the stage's lease: a new attempt, or (resumed) the same one continuing."""
    stage = job.stages[index]
    stage.status = StageStatus.RUNNING
    stage.attempts = attempt
    stage.started_at = stage.started_at or now
    if not resumed:
        stage.progress = 0.0
        stage.message = None
    message = stage.label if attempt == 1 else f"{stage.label} (attempt {attempt})"
    fields = {
        "status": JobStatus.RUNNING.value,
        "stage": stage.name,
        "message": f"{message}: continuing" if resumed else message,
        **_progress_fields(job, now),
    }
    if job.started_at is None:
        job.started_at = now
        fields["started_at"] = now
    return fields


def stage_progressed(
    job: Job, index: int, fraction: float, message: str | None, now: datetime
) -> dict[str, Any]:
    stage = job.stages[index]
    stage.progress = min(1.0, max(0.0, fraction))
    stage.message = message
    text = f"{stage.label}: {message}" if message else stage.label
    return {"message": text, **_progress_fields(job, now)}


def stage_succeeded(
    job: Job,
    index: int,
    now: datetime,
    *,
    result: dict[str, Any] | None,
    artifacts: dict[str, Artifact] | None = None,
    skipped: str | None = None,
) -> dict[str, Any]:
    """The stage is done, or had nothing to do (`skipped` says why); the job moves on, or
    succeeds with `result`."""
    stage = job.stages[index]
    stage.status = StageStatus.SKIPPED if skipped else StageStatus.SUCCEEDED
    stage.message = skipped  # a finished stage's last progress note is stale
    stage.progress = 1.0
    stage.finished_at = now
    stage.error = None
    fields: dict[str, Any] = {}
    if artifacts:
        job.artifacts = {**job.artifacts, **artifacts}
        fields["artifacts"] = {n: a.model_dump() for n, a in job.artifacts.items()}
    next_index = next_pending(job, index)
    if next_index is None:
        return {
            **fields,
            "status": JobStatus.SUCCEEDED.value,
            "stage": None,
            "message": "Done",
            "result": result,
            "finished_at": now,
            **_progress_fields(job, now),
            "eta_seconds": None,
            **webhook_pending(job),
        }
    following = job.stages[next_index]
    return {
        **fields,
        "stage": following.name,
        "message": f"Queued: {following.label}",
        **_progress_fields(job, now),
    }


def next_pending(job: Job, index: int) -> int | None:
    """The first stage after `index` that is not done yet."""
    for position in range(index + 1, len(job.stages)):
        if not job.stages[position].status.done:
            return position
    return None


def stage_failed(job: Job, index: int, error: ErrorInfo, now: datetime) -> dict[str, Any]:
    """The stage failed for good, and so does the job."""
    stage = job.stages[index]
    stage.status = StageStatus.FAILED
    stage.finished_at = now
    stage.error = error
    return {
        "status": JobStatus.FAILED.value,
        "message": f"{stage.label} failed: {error.message}",
        "error": error.model_dump(),
        "finished_at": now,
        **_progress_fields(job, now),
        "eta_seconds": None,
        **webhook_pending(job),
    }


def stage_retrying(job: Job, index: int, error: ErrorInfo, now: datetime) -> dict[str, Any]:
    """The attempt failed but another may succeed; the stage waits for its redelivery."""
    stage = job.stages[index]
    stage.status = StageStatus.RETRYING
    stage.error = error
    return {
        "message": f"{stage.label}: retrying after an error ({error.message})",
        **_progress_fields(job, now),
    }


def job_cancelled(job: Job, index: int | None, now: datetime) -> dict[str, Any]:
    """The user's cancel took effect: the current stage (if any) stops, nothing else runs."""
    if index is not None and not job.stages[index].status.done:
        job.stages[index].status = StageStatus.CANCELLED
        job.stages[index].finished_at = now
    return {
        "status": JobStatus.CANCELLED.value,
        "message": "Cancelled",
        "finished_at": now,
        "stages": _stages_field(job),
        "eta_seconds": None,
        **webhook_pending(job),
    }


def stage_continuing(job: Job, index: int, now: datetime) -> dict[str, Any]:
    """The stage used its time budget for this delivery and resumes from its cursor in the next."""
    stage = job.stages[index]
    return {"message": f"{stage.label}: continuing", **_progress_fields(job, now)}


def job_retried(job: Job, now: datetime) -> dict[str, Any]:
    """A failed job goes back to the queue at its first stage that is not done; done ones stay."""
    for stage in job.stages:
        if not stage.status.done:
            stage.status = StageStatus.PENDING
            stage.progress = 0.0
            stage.message = None
            stage.error = None
            stage.finished_at = None
    first = next(stage for stage in job.stages if not stage.status.done)
    return {
        "status": JobStatus.QUEUED.value,
        "stage": first.name,
        "message": f"Queued again: {first.label}",
        "error": None,
        "finished_at": None,
        "cancel_requested": False,
        "eta_seconds": None,
        "stages": _stages_field(job),
        "webhook": None,  # the next end of the job gets a webhook of its own
    }
