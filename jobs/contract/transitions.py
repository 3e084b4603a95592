"""How a job document changes when its stages (and their items) start, progress, end or fail.

Pure functions: each takes the job as last read and returns the job as it should be written,
never touching the one it was given. The store (jobs.cloud.store) writes what differs, so every rule
about the job document lives here.

Stages form a graph: each runs once every stage it `needs` is done, so several may run at once.
The job-wide fields follow from the stages after every change (`_settled`): `progress` is their
weighted sum and never goes backwards, `stage` names the running stage with the most work left
(the one a UI headlines) and `message` says what it is doing.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from jobs.contract.models import (
    MAX_LATEST_ENTRIES,
    Artifact,
    ErrorInfo,
    Job,
    JobStatus,
    StageItems,
    StageState,
    StageStatus,
    WebhookDelivery,
)

# Below this much progress an ETA is a guess from too little data.
_ETA_MIN_PROGRESS = 0.02
# Share of a fanned-out stage's progress its items earn; its reduce earns the rest.
ITEMS_SHARE = 0.95
_ACTIVE = (StageStatus.RUNNING, StageStatus.RETRYING)


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


def needs_of(job: Job, index: int) -> list[str]:
    """The stages the one at `index` waits for."""
    needs = job.stages[index].needs
    if needs is None:
        return [job.stages[index - 1].name] if index > 0 else []
    return needs


def upstream(job: Job, index: int) -> list[str]:
    """Every stage the one at `index` needs, directly or through the stages it needs."""
    found: set[str] = set()
    pending = needs_of(job, index)
    while pending:
        name = pending.pop()
        position = job.stage_index(name)
        if name in found or position is None:
            continue
        found.add(name)
        pending.extend(needs_of(job, position))
    return [stage.name for stage in job.stages if stage.name in found]


def ready(job: Job) -> list[str]:
    """Stages not started whose needs are all done: each is due to be published."""
    done = {stage.name for stage in job.stages if stage.status.done}
    return [
        stage.name
        for index, stage in enumerate(job.stages)
        if stage.status == StageStatus.PENDING and set(needs_of(job, index)) <= done
    ]


def newly_ready(before: Job, after: Job) -> list[str]:
    """Stages a change made ready: the change that does it publishes them, exactly once."""
    if after.status.terminal:
        return []
    was = set(ready(before))
    return [name for name in ready(after) if name not in was]


def _copy(job: Job) -> Job:
    return job.model_copy(deep=True)


def _headline(job: Job) -> StageState | None:
    """The stage a UI should name: the active one with the most work left, else the first due."""
    active = [stage for stage in job.stages if stage.status in _ACTIVE]
    if active:
        return max(active, key=lambda stage: stage.weight * (1.0 - stage.progress))
    due = ready(job)
    return job.stages[job.stage_index(due[0]) or 0] if due else None


def _describe(stage: StageState, others: int) -> str:
    label = stage.label if stage.attempts <= 1 else f"{stage.label} (attempt {stage.attempts})"
    match stage.status:
        case StageStatus.PENDING:
            text = f"Queued: {stage.label}"
        case StageStatus.RETRYING if stage.error is not None:
            text = f"{label}: retrying after an error ({stage.error.message})"
        case _:
            text = f"{label}: {stage.message}" if stage.message else label
    return f"{text} (and {others} more)" if others else text


def _settled(job: Job, now: datetime) -> Job:
    """The job-wide fields as its stages make them: progress (never backwards), ETA, and while
    the job runs, the headline stage and its message."""
    job.progress = max(job.progress, overall_progress(job.stages))
    job.eta_seconds = eta_seconds(job, job.progress, now)
    if job.status.terminal:
        job.eta_seconds = None
        return job
    headline = _headline(job)
    if headline is not None:
        others = sum(1 for s in job.stages if s.status in _ACTIVE and s is not headline)
        job.stage = headline.name
        job.message = _describe(headline, others)
    return job


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
    """A delivery took the stage's lease: a new attempt, or (resumed) the same one continuing
    (a continuation, or the reduce of its items)."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.RUNNING
    stage.attempts = attempt
    stage.started_at = stage.started_at or now
    if not resumed:
        stage.progress = 0.0
        stage.message = None
        stage.items = None
    job.status = JobStatus.RUNNING
    job.started_at = job.started_at or now
    return _settled(job, now)


def stage_progressed(
    job: Job, index: int, fraction: float, message: str | None, now: datetime
) -> Job:
    job = _copy(job)
    stage = job.stages[index]
    fraction = min(1.0, max(0.0, fraction))
    if stage.items is not None:  # the reduce: its share comes after the items'
        fraction = ITEMS_SHARE + (1.0 - ITEMS_SHARE) * fraction
    stage.progress = fraction
    stage.message = message
    return _settled(job, now)


def stage_succeeded(
    job: Job,
    index: int,
    now: datetime,
    *,
    result: dict[str, Any] | None,
    artifacts: dict[str, Artifact] | None = None,
    skipped: str | None = None,
) -> Job:
    """The stage is done, or had nothing to do (`skipped` says why); the job goes on, or
    succeeds with `result` once every stage is done."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.SKIPPED if skipped else StageStatus.SUCCEEDED
    stage.message = skipped  # a finished stage's last progress note is stale
    stage.progress = 1.0
    stage.finished_at = now
    stage.error = None
    job.artifacts = {**job.artifacts, **(artifacts or {})}
    if all(s.status.done for s in job.stages):
        _ended(job, JobStatus.SUCCEEDED, "Done", now)
        job.stage = None
        job.result = result
    return _settled(job, now)


def all_done_but(job: Job, index: int) -> bool:
    """Whether the stage at `index` is the last one not done: its success ends the job."""
    return all(s.status.done for i, s in enumerate(job.stages) if i != index)


def stage_failed(job: Job, index: int, error: ErrorInfo, now: datetime) -> Job:
    """The stage failed for good, and so does the job."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.FAILED
    stage.finished_at = now
    stage.error = error
    if stage.items is not None:
        stage.items.running = {}
    _ended(job, JobStatus.FAILED, f"{stage.label} failed: {error.message}", now)
    job.error = error
    return _settled(job, now)


def stage_retrying(job: Job, index: int, error: ErrorInfo, now: datetime) -> Job:
    """The attempt failed but another may succeed; the stage waits for its redelivery."""
    job = _copy(job)
    stage = job.stages[index]
    stage.status = StageStatus.RETRYING
    stage.error = error
    return _settled(job, now)


def stage_continuing(job: Job, index: int, now: datetime) -> Job:
    """The stage used its time budget for this delivery and resumes from its cursor in the next."""
    job = _copy(job)
    job.stages[index].message = "continuing"
    return _settled(job, now)


def stage_fanned_out(job: Job, index: int, total: int, now: datetime) -> Job:
    """The stage split its work into `total` items, each now its own message."""
    job = _copy(job)
    stage = job.stages[index]
    stage.items = StageItems(total=total)
    stage.progress = 0.0
    stage.message = f"0/{total} parts"
    return _settled(job, now)


def _items(job: Job, index: int) -> tuple[Job, StageState, StageItems]:
    job = _copy(job)
    stage = job.stages[index]
    assert stage.items is not None, "only a fanned-out stage has items"
    return job, stage, stage.items


def _items_changed(job: Job, stage: StageState, items: StageItems, now: datetime) -> Job:
    earned = items.settled + sum(items.running.values())
    stage.progress = max(stage.progress, ITEMS_SHARE * earned / max(items.total, 1))
    stage.message = f"{items.done}/{items.total} parts"
    if items.failed:
        stage.message += f", {items.failed} failed"
    if stage.status == StageStatus.PENDING:  # items run again after a retry of the job
        stage.status = StageStatus.RUNNING
    return _settled(job, now)


def item_progressed(job: Job, index: int, item: int, fraction: float, now: datetime) -> Job:
    job, stage, items = _items(job, index)
    items.running[str(item)] = round(min(1.0, max(0.0, fraction)), 4)
    return _items_changed(job, stage, items, now)


def item_settled(job: Job, index: int, item: int, now: datetime, *, failed: bool) -> Job:
    """An item is done (or, `failed`, failed for good under a policy that carries on)."""
    job, stage, items = _items(job, index)
    items.running.pop(str(item), None)
    if failed:
        items.failed += 1
    else:
        items.done += 1
    return _items_changed(job, stage, items, now)


def latest_shown(job: Job, stage: str, entries: list[Any]) -> Job:
    """A delivery of `stage` ended showing `entries`: the job keeps the stage's newest ones."""
    if not entries:
        return job
    kept = [*job.latest.get(stage, []), *entries][-MAX_LATEST_ENTRIES:]
    return job.model_copy(update={"latest": {**job.latest, stage: kept}})


def item_stopped(job: Job, index: int, item: int, now: datetime) -> Job:
    """An item's attempt ended without an outcome (it retries or continues later)."""
    job, stage, items = _items(job, index)
    items.running.pop(str(item), None)
    return _items_changed(job, stage, items, now)


def job_cancelled(job: Job, index: int | None, now: datetime) -> Job:
    """The user's cancel took effect: every stage still running stops, nothing else runs."""
    job = _copy(job)
    for position, stage in enumerate(job.stages):
        if stage.status in _ACTIVE or (position == index and not stage.status.done):
            stage.status = StageStatus.CANCELLED
            stage.finished_at = now
        if stage.items is not None:
            stage.items.running = {}
    _ended(job, JobStatus.CANCELLED, "Cancelled", now)
    job.eta_seconds = None
    return job


def cancel_requested(job: Job) -> Job:
    """The user asked to cancel while stages run: they stop at their next check."""
    job = _copy(job)
    job.cancel_requested = True
    job.message = "Cancelling..."
    return job


def job_retried(job: Job, now: datetime) -> Job:
    """A failed job goes back to the queue: stages not done run again (those that fanned out,
    only their items that did not succeed); done ones keep their outputs."""
    job = _copy(job)
    for stage in job.stages:
        if stage.status.done:
            continue
        stage.status = StageStatus.PENDING
        stage.message = None
        stage.error = None
        stage.finished_at = None
        if stage.items is not None:
            stage.items.failed = 0
            stage.items.running = {}
        stage.progress = (
            ITEMS_SHARE * stage.items.done / max(stage.items.total, 1) if stage.items else 0.0
        )
    job.status = JobStatus.QUEUED
    job.error = None
    job.finished_at = None
    job.cancel_requested = False
    job.webhook = None  # the next end of the job gets a webhook of its own
    due = ready(job)
    job.stage = due[0] if due else None
    label = job.stages[job.stage_index(due[0]) or 0].label if due else ""
    job = _settled(job, now)
    job.message = f"Queued again: {label}"
    job.eta_seconds = None
    return job
