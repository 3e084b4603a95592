"""What a user may do to a job once it exists: cancel it, or retry it after a failure.

Both are pure decisions on the job document and its runs, written by the store atomically and
only if nothing changed since it read them, so they cannot interleave badly with a processor
claiming, finishing or failing the same stage.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from jobs.cloud.endings import job_ended
from jobs.cloud.publisher import StagePublisher, publish_or_defer
from jobs.cloud.quotas import Quotas
from jobs.cloud.store import Decision, JobStore, expired
from jobs.contract import transitions
from jobs.contract.budget import usd
from jobs.contract.errors import BudgetExceeded, Conflict, NotFound
from jobs.contract.models import Job, JobStatus, StageState, StageStatus, run_name, utcnow
from jobs.contract.runs import Run
from jobs.telemetry import tracing

log = logging.getLogger(__name__)


def _owned(job: Job | None, job_id: str, owner: str) -> Job:
    """The job; another user's job is as absent as a missing one."""
    if job is None or job.owner != owner or expired(job.expire_at):
        raise NotFound(f"No job {job_id!r}.", code="JOB_NOT_FOUND")
    return job


def _runs_of(job: Job, stages: list[StageState]) -> list[str]:
    """The run documents of these stages, and of their items if they fanned out."""
    names: list[str] = []
    for stage in stages:
        names.append(stage.name)
        total = stage.items.total if stage.items else 0
        names.extend(run_name(stage.name, n) for n in range(total))
    return names


def _active_runs(job: Job) -> list[str]:
    """The runs a stage or item running now could hold a lease on."""
    active = (StageStatus.RUNNING, StageStatus.RETRYING)
    return _runs_of(job, [stage for stage in job.stages if stage.status in active])


def _pending_runs(job: Job) -> list[str]:
    return _runs_of(job, [stage for stage in job.stages if not stage.status.done])


class CancelOutcome(StrEnum):
    CANCELLED = "cancelled"  # nothing was running it: the job is cancelled now
    REQUESTED = "requested"  # a stage is running: it stops at its next check


@dataclass(frozen=True)
class Cancelled:
    job: Job
    outcome: CancelOutcome
    ended_now: bool  # this cancel ended the job (not one before it)


def decide_cancel(
    job: Job | None, runs: Mapping[str, Run], job_id: str, owner: str
) -> Decision[Cancelled]:
    """Cancel at once if no stage or item holds a live lease; otherwise ask them to stop."""
    job = _owned(job, job_id, owner)
    if job.status == JobStatus.CANCELLED:
        return Decision(Cancelled(job, CancelOutcome.CANCELLED, ended_now=False))
    if job.status.terminal:
        raise Conflict(f"The job already {job.status.value}.", code="JOB_FINISHED")
    now = utcnow()
    if any(run.is_live(now) for run in runs.values()):
        requested = transitions.cancel_requested(job)
        return Decision(Cancelled(requested, CancelOutcome.REQUESTED, False), job=requested)
    index = job.stage_index(job.stage) if job.stage else None
    cancelled = transitions.job_cancelled(transitions.cancel_requested(job), index, now)
    return Decision(Cancelled(cancelled, CancelOutcome.CANCELLED, True), job=cancelled)


def decide_retry(
    job: Job | None, runs: Mapping[str, Run], job_id: str, owner: str
) -> Decision[Job]:
    """Queue a failed job again: stages (and items) that did not succeed run again, done ones
    keep their outputs. Each retried stage or item gets a fresh allowance of attempts."""
    job = _owned(job, job_id, owner)
    if job.status != JobStatus.FAILED:
        raise Conflict(
            f"Only a failed job can be retried; this one is {job.status.value}.",
            code="JOB_NOT_FAILED",
        )
    if job.max_cost_usd is not None and job.cost_usd > job.max_cost_usd:
        raise BudgetExceeded(
            f"The job has spent {usd(job.cost_usd)}, over its budget of "
            f"{usd(job.max_cost_usd)}; running it again would only spend more."
        )
    now = utcnow()
    retried = transitions.job_retried(job, now)
    # A stage never claimed has no run to reset, and a done item keeps its output.
    reset = {
        name: run.retried(now)
        for name, run in runs.items()
        if run.status is not None and not run.done
    }
    return Decision(retried, job=retried, runs=reset)


async def cancel_job(
    store: JobStore, publisher: StagePublisher, quotas: Quotas, job_id: str, owner: str
) -> tuple[Job, CancelOutcome]:
    """Cancel the job, or ask its running stage to stop; see `decide_cancel`."""
    done = await store.decide(
        job_id, lambda job, runs: decide_cancel(job, runs, job_id, owner), runs=_active_runs
    )
    if done.ended_now:
        with tracing.job_span("cancelled", done.job.traceparent, job_id=job_id):
            await job_ended(done.job, quotas, publisher)
    return done.job, done.outcome


async def retry_job(store: JobStore, publisher: StagePublisher, job_id: str, owner: str) -> Job:
    """Queue a failed job again; see `decide_retry`."""
    job = await store.decide(
        job_id, lambda job, runs: decide_retry(job, runs, job_id, owner), runs=_pending_runs
    )
    with tracing.job_span("retry", job.traceparent, job_id=job.job_id):
        await publish_or_defer(publisher, job.job_id, transitions.ready(job))
    return job
