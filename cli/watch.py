"""Live progress of one job in the terminal, fed by a Firestore listener on its document."""

from __future__ import annotations

import queue
from typing import Any

from google.cloud import firestore
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn

from jobs.budget import usd
from jobs.models import Job, StageStatus
from jobs.settings import Settings
from jobs.store import job_from_document

_STATUS_STYLE = {
    StageStatus.PENDING: "dim",
    StageStatus.RUNNING: "cyan",
    StageStatus.RETRYING: "yellow",
    StageStatus.SUCCEEDED: "green",
    StageStatus.SKIPPED: "dim",
    StageStatus.FAILED: "red",
    StageStatus.CANCELLED: "magenta",
}


def watch_job(job_id: str, settings: Settings, console: Console) -> Job:
    """Show a progress bar per stage until the job ends; return the final job."""
    updates: queue.Queue[Job | None] = queue.Queue()
    client = firestore.Client(project=settings.project_id)
    ref = client.collection(settings.jobs_collection).document(job_id)

    def on_snapshot(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        for snapshot in snapshots:
            updates.put(job_from_document(snapshot.to_dict()) if snapshot.exists else None)

    watch = ref.on_snapshot(on_snapshot)
    try:
        return _render(updates, console, job_id)
    finally:
        watch.unsubscribe()  # type: ignore[no-untyped-call]


def _render(updates: queue.Queue[Job | None], console: Console, job_id: str) -> Job:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[note]}"),
    )
    with Progress(*columns, console=console) as bars:
        tasks: dict[str, TaskID] = {}
        overall = bars.add_task("[bold]job", total=1.0, note="")
        while True:
            job = updates.get()
            if job is None:
                raise LookupError(f"Job {job_id} does not exist.")
            for stage in job.stages:
                if stage.name not in tasks:
                    tasks[stage.name] = bars.add_task(stage.label, total=1.0, note="")
                style = _STATUS_STYLE[stage.status]
                note = f"[{style}]{stage.status.value}[/]"
                if stage.message and stage.status == StageStatus.RUNNING:
                    note += f" {stage.message}"
                done = 1.0 if stage.status.done else stage.progress
                bars.update(tasks[stage.name], completed=done, note=note)
            eta = f" · about {job.eta_seconds:.0f} s left" if job.eta_seconds else ""
            note = f"{job.message}{eta}{_spent(job)}"
            bars.update(overall, completed=job.progress, note=note)
            if job.status.terminal:
                return job


def _spent(job: Job) -> str:
    if not job.cost_usd:
        return ""
    budget = f" of {usd(job.max_cost_usd)}" if job.max_cost_usd else ""
    return f" · spent {usd(job.cost_usd)}{budget}"
