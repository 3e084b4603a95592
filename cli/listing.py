"""`longrun jobs`: the caller's jobs, newest first, as a table."""

from __future__ import annotations

from datetime import datetime

from rich.markup import escape
from rich.table import Table

from jobs.contract.models import Job, JobStatus, utcnow

STATUS_STYLE = {
    JobStatus.QUEUED: "dim",
    JobStatus.RUNNING: "cyan",
    JobStatus.SUCCEEDED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "magenta",
}


def jobs_table(jobs: list[Job]) -> Table:
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("job", "pipeline", "status", "progress", "created", "took"):
        table.add_column(column, no_wrap=True)
    table.add_column("message", overflow="ellipsis", no_wrap=True, ratio=1)
    for job in jobs:
        table.add_row(
            job.job_id,
            job.pipeline,
            f"[{STATUS_STYLE[job.status]}]{job.status.value}[/]",
            f"{job.progress:4.0%}",
            _local(job.created_at),
            _took(job),
            escape(job.error.code if job.error else job.message),
        )
    return table


def _local(moment: datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%d %H:%M")


def _took(job: Job) -> str:
    """How long it ran (so far, while it runs)."""
    if job.started_at is None:
        return ""
    seconds = ((job.finished_at or utcnow()) - job.started_at).total_seconds()
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes}m{seconds:02d}s" if minutes else f"{seconds}s"
