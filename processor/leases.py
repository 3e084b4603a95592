"""Stage leases: who may run a stage now. Each claim, heartbeat and release is a decision on the
job and run documents that the store (jobs.cloud.store) writes atomically, so the lease and what
clients see never disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jobs.cloud.store import Decision, JobStore
from jobs.contract import transitions
from jobs.contract.models import Job, StageStatus, utcnow
from jobs.contract.runs import Lease, Run, RunStatus, exhausted_error
from jobs.contract.settings import Settings


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # the lease is ours: run the stage
    DONE = "done"  # the stage already succeeded: ack, maybe re-publish the next one
    BUSY = "busy"  # someone alive holds the lease: let Pub/Sub deliver again later
    GONE = "gone"  # no such job or stage: nothing will ever run it
    TERMINAL = "terminal"  # the job already ended
    CANCELLED = "cancelled"  # the user cancelled; this claim made it final
    EXHAUSTED = "exhausted"  # no attempts left; this claim failed the job


@dataclass
class Claim:
    outcome: ClaimOutcome
    job: Job | None = None  # as written by the claim
    index: int = 0
    lease: Lease | None = None
    cursor: Any = None
    republish: str | None = None


class LeaseLost(Exception):
    """Our lease expired and someone else took the stage; our result must be thrown away."""


# A stage's end: given the job as it is now, the job as it should be written.
JobUpdate = Callable[[Job], Job]


def decide_claim(
    job: Job | None, run: Run, stage: str, owner: str, settings: Settings
) -> Decision[Claim]:
    """What a delivery of (job, stage) should do, and what it writes."""
    index = job.stage_index(stage) if job is not None else None
    if job is None or index is None:
        return Decision(Claim(ClaimOutcome.GONE))
    if job.status.terminal:
        return Decision(Claim(ClaimOutcome.TERMINAL, job=job, index=index))
    if run.done:
        republish = _to_republish(job, index)
        return Decision(Claim(ClaimOutcome.DONE, job=job, index=index, republish=republish))
    now = utcnow()
    # A live lease first: the stage's holder ends a job cancelled meanwhile, not a duplicate
    # message arriving while it runs.
    if run.is_live(now):
        return Decision(Claim(ClaimOutcome.BUSY, job=job, index=index))
    if job.cancel_requested:
        cancelled = transitions.job_cancelled(job, index, now)
        return Decision(Claim(ClaimOutcome.CANCELLED, job=cancelled, index=index), job=cancelled)
    resuming = run.status == RunStatus.CONTINUING
    if not resuming and run.attempts_left(settings.max_attempts) <= 0:
        error = exhausted_error(stage, run.attempts, run.last_cause())
        failed = transitions.stage_failed(job, index, error, now)
        released = run.released(RunStatus.FAILED, now, expire_at=job.expire_at)
        claim = Claim(ClaimOutcome.EXHAUSTED, job=failed, index=index)
        return Decision(claim, job=failed, runs={stage: released})
    attempt = run.attempts if resuming else run.attempts + 1
    final = run.retry_base + settings.max_attempts
    lease = Lease(job.job_id, stage, owner, uuid.uuid4().hex, attempt, final, run.retry_base + 1)
    started = transitions.stage_started(job, index, attempt, now, resumed=resuming)
    leased = run.leased(lease, now, settings.lease_seconds, job.expire_at)
    claim = Claim(ClaimOutcome.CLAIMED, job=started, index=index, lease=lease, cursor=run.cursor)
    return Decision(claim, job=started, runs={stage: leased})


def decide_finish(
    job: Job | None, run: Run, lease: Lease, ended: Run, update: JobUpdate
) -> Decision[Job]:
    """End our lease with the run as `ended` and the job as `update` makes it."""
    if job is None or not run.held_by(lease):
        raise LeaseLost(f"{lease.job_id}/{lease.stage}")
    if job.status.terminal:  # ended while our lease had lapsed: that end stands
        raise LeaseLost(f"{lease.job_id}/{lease.stage}")
    after = update(job)
    return Decision(after, job=after, runs={lease.stage: ended})


def decide_heartbeat(run: Run, lease: Lease, seconds: float) -> Decision[bool]:
    if not run.held_by(lease):
        return Decision(False)
    return Decision(True, runs={lease.stage: run.extended(utcnow(), seconds)})


def decide_checkpoint(run: Run, lease: Lease, cursor: Any) -> Decision[None]:
    if not run.held_by(lease):
        raise LeaseLost(f"{lease.job_id}/{lease.stage}")
    return Decision(None, runs={lease.stage: run.checkpointed(cursor, utcnow())})


class Leases:
    """Claims, heartbeats and finishes stage runs on behalf of one processor instance."""

    def __init__(self, store: JobStore, settings: Settings, owner: str) -> None:
        self._store = store
        self._settings = settings
        self.owner = owner

    async def claim(self, job_id: str, stage: str) -> Claim:
        """Decide, atomically, what this delivery of (job, stage) should do."""

        def decide(job: Job | None, runs: Mapping[str, Run]) -> Decision[Claim]:
            return decide_claim(job, runs.get(stage, Run()), stage, self.owner, self._settings)

        return await self._store.decide(job_id, decide, runs=[stage])

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend our lease; False once it is no longer ours."""
        seconds = self._settings.lease_seconds
        return await self._store.decide_run(
            lease.job_id, lease.stage, lambda run: decide_heartbeat(run, lease, seconds)
        )

    async def finish(self, lease: Lease, ended: Callable[[Run], Run], update: JobUpdate) -> Job:
        """End our lease: the run as `ended` makes it and the job's transition, in one atomic
        write. `update` is given the job as it is now (so a cancel requested meanwhile is
        seen). Returns the job as written; raises LeaseLost if the stage is no longer ours."""

        def decide(job: Job | None, runs: Mapping[str, Run]) -> Decision[Job]:
            run = runs.get(lease.stage, Run())
            return decide_finish(job, run, lease, ended(run), update)

        return await self._store.decide(lease.job_id, decide, runs=[lease.stage])

    async def checkpoint(self, lease: Lease, cursor: Any) -> None:
        """Save a stage cursor for a later delivery to resume from, while we hold the lease."""
        await self._store.decide_run(
            lease.job_id, lease.stage, lambda run: decide_checkpoint(run, lease, cursor)
        )


def _to_republish(job: Job, index: int) -> str | None:
    """After a duplicate of a done stage: the next stage, if nobody has started it yet."""
    following = transitions.next_pending(job, index)
    if following is None or job.stages[following].status != StageStatus.PENDING:
        return None
    return job.stages[following].name
