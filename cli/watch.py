"""Live progress of one job in the terminal, fed by a Firestore listener on its document.

A listener whose stream breaks for good stops calling back without a word, so whenever it has
been quiet for a while the job is also read from the API (a `304` while nothing changed); a read
that finds a version the listener never delivered shows it broken, and it is started again.
"""

from __future__ import annotations

import queue
from collections.abc import Callable, Iterator
from typing import Any

import httpx
from google.cloud import firestore
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Column

from jobs.cloud.store import job_from_document
from jobs.contract.budget import usd
from jobs.contract.models import Job, JobStatus, StageItems, StageState, StageStatus
from jobs.contract.settings import Settings

_STATUS_STYLE = {
    StageStatus.PENDING: "dim",
    StageStatus.RUNNING: "cyan",
    StageStatus.RETRYING: "yellow",
    StageStatus.SUCCEEDED: "green",
    StageStatus.SKIPPED: "dim",
    StageStatus.FAILED: "red",
    StageStatus.CANCELLED: "magenta",
}


QUIET_SECONDS = 3.0


def watch_job(job_id: str, settings: Settings, console: Console, api: httpx.Client) -> Job:
    """Show a progress bar per stage until the job ends (stages running at once move together,
    a fanned-out stage counts its parts); return the final job."""
    return _render(job_changes(job_id, settings, api), console)


def job_changes(job_id: str, settings: Settings, api: httpx.Client) -> Iterator[Job]:
    """Each newer state of the job, as it happens, up to and including its final one."""
    updates: queue.Queue[Job | None] = queue.Queue()
    client = firestore.Client(project=settings.project_id)
    ref = client.collection(settings.jobs_collection).document(job_id)

    def on_snapshot(snapshots: list[Any], _changes: Any, _read_time: Any) -> None:
        for snapshot in snapshots:
            updates.put(job_from_document(snapshot.to_dict()) if snapshot.exists else None)

    watches = [ref.on_snapshot(on_snapshot)]

    def listen_again() -> None:
        watches.pop().unsubscribe()  # type: ignore[no-untyped-call]
        watches.append(ref.on_snapshot(on_snapshot))

    next_change = _changes(updates, _poller(api, job_id), listen_again)
    try:
        while True:
            job = next_change()
            if job is None:
                raise LookupError(f"Job {job_id} does not exist.")
            yield job
            if job.status.terminal:
                return
    finally:
        watches.pop().unsubscribe()  # type: ignore[no-untyped-call]


def _poller(api: httpx.Client, job_id: str) -> Callable[[], Job | None]:
    """Read the job from the API; None when it has not changed since the last read."""
    etag: str | None = None

    def poll() -> Job | None:
        nonlocal etag
        try:
            response = api.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": etag or ""})
        except httpx.HTTPError:
            return None  # a blip: the listener, or the next poll, carries on
        if response.status_code == 404:
            raise LookupError(f"Job {job_id} does not exist.")
        if response.status_code != 200:
            return None
        etag = response.headers.get("ETag")
        return Job.model_validate(response.json())

    return poll


def _changes(
    updates: queue.Queue[Job | None],
    poll: Callable[[], Job | None],
    listen_again: Callable[[], None],
) -> Callable[[], Job | None]:
    """The next newer state of the job, from the listener or, when it is quiet, the API (and
    then, if the API knew better, from a listener started again)."""
    last_version = -1

    def next_change() -> Job | None:
        nonlocal last_version
        while True:
            try:
                job = updates.get(timeout=QUIET_SECONDS)
            except queue.Empty:
                job = poll()
                if job is None:
                    continue
                if job.version > last_version:
                    listen_again()
            if job is None:
                return None
            if job.version > last_version:
                last_version = job.version
                return job

    return next_change


def _render(changes: Iterator[Job], console: Console) -> Job:
    # The notes (parts running, the job's message) get long: they are cut short, never the bars.
    columns = (
        TextColumn("{task.description}", table_column=Column(no_wrap=True)),
        BarColumn(bar_width=None, table_column=Column(ratio=2, min_width=10)),
        TaskProgressColumn(),
        TextColumn(
            "{task.fields[note]}", table_column=Column(ratio=3, no_wrap=True, overflow="ellipsis")
        ),
    )
    with Progress(*columns, console=console, expand=True) as bars:
        tasks: dict[str, TaskID] = {}
        overall = bars.add_task("[bold]job", total=1.0, note="")
        shown: set[str] = set()
        for job in changes:
            headline = job.stage if job.status == JobStatus.RUNNING else None
            for stage in job.stages:
                label = escape(stage.label)
                if stage.name not in tasks:
                    tasks[stage.name] = bars.add_task(label, total=1.0, note="")
                bars.update(
                    tasks[stage.name],
                    description=f"[bold]{label}[/]" if stage.name == headline else label,
                    completed=1.0 if stage.status.done else stage.progress,
                    note=_note(stage),
                )
            for line in _new_latest(job, shown):
                bars.console.print(line)
            eta = f" · about {job.eta_seconds:.0f} s left" if job.eta_seconds else ""
            note = f"{escape(job.message)}{eta}{_spent(job)}"
            bars.update(overall, completed=job.progress, note=note)
    return job


def _new_latest(job: Job, shown: set[str]) -> list[str]:
    """The entries stages show (`latest`: a transcript's lines as its spans finish) not yet
    printed, in time order, as lines to print above the bars."""
    lines = []
    for stage, entries in job.latest.items():
        for entry in entries:
            key = f"{stage}:{entry}"
            if key in shown:
                continue
            shown.add(key)
            if isinstance(entry, dict) and "text" in entry:
                start = float(entry.get("start", 0.0))
                lines.append((start, f"[dim]{start:7.1f} s[/]  {escape(str(entry['text']))}"))
    return [line for _, line in sorted(lines)]


def _note(stage: StageState) -> str:
    """The stage's status, then its parts (once it fans out) or what it says it is doing."""
    style = _STATUS_STYLE[stage.status]
    note = f"[{style}]{stage.status.value}[/]"
    if stage.items is not None:
        return f"{note} {_parts(stage, stage.items)}"
    if stage.message and stage.status == StageStatus.RUNNING:
        note += f" {escape(stage.message)}"
    return note


# A part's own progress in one character, so many running parts fit on the stage's line.
_BLOCKS = "▁▂▃▄▅▆▇█"
MAX_PARTS_SHOWN = 8


def _parts(stage: StageState, items: StageItems) -> str:
    """Parts done of how many, how many failed, and each part running now with its progress."""
    text = f"{items.done}/{items.total} parts"
    if items.failed:
        text += f", [red]{items.failed} failed[/]"
    running = sorted((int(number), fraction) for number, fraction in items.running.items())
    if running:
        # Numbered from 0 in the job document; people count from 1.
        shown = [f"#{n + 1}{_block(fraction)}" for n, fraction in running[:MAX_PARTS_SHOWN]]
        more = len(running) - MAX_PARTS_SHOWN
        text += " · " + " ".join(shown) + (f" +{more} more" if more > 0 else "")
    elif items.complete and stage.status == StageStatus.RUNNING:
        text += " · combining"
    return text


def _block(fraction: float) -> str:
    return _BLOCKS[min(len(_BLOCKS) - 1, int(fraction * len(_BLOCKS)))]


def _spent(job: Job) -> str:
    if not job.cost_usd:
        return ""
    budget = f" of {usd(job.max_cost_usd)}" if job.max_cost_usd else ""
    return f" · spent {usd(job.cost_usd)}{budget}"
