"""Leases: who may run a stage, or one item of a stage that fans out, now. Each claim, heartbeat
and release is a decision on the job and run documents that the store (jobs.cloud.store) writes
atomically, so the lease and what clients see never disagree.

A stage message is claimed as a whole stage, or (for a stage that fans out) first to split its
work into items and, once every item has settled, again to reduce them. An item message claims
only its item's run: item claims write no job document, so a hundred items starting at once do
not contend on it; their ends do write it, and that write (preconditioned like every other)
decides, exactly once, whether it was the last item and so whether the reduce is due.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from jobs.cloud.store import Decision, JobStore
from jobs.contract import transitions
from jobs.contract.models import ErrorInfo, Job, StageMessage, StageStatus, utcnow
from jobs.contract.pipeline import ItemFailure
from jobs.contract.runs import Lease, Run, RunStatus, exhausted_error
from jobs.contract.settings import Settings


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # the lease is ours: run the stage (or item, or reduce)
    DONE = "done"  # already done: ack, maybe re-publish what it made due
    BUSY = "busy"  # someone alive holds the lease: let Pub/Sub deliver again later
    GONE = "gone"  # no such job, stage or item: nothing will ever run it
    TERMINAL = "terminal"  # the job already ended
    CANCELLED = "cancelled"  # the user cancelled; this claim made it final
    EXHAUSTED = "exhausted"  # no attempts left; this claim failed it
    FANNED_OUT = "fanned_out"  # the stage's items are still settling: re-publish lost ones


class Phase(StrEnum):
    """What a claimed delivery runs."""

    STAGE = "stage"  # the stage's function (which may split the work into items)
    ITEM = "item"  # one item
    REDUCE = "reduce"  # the items' outputs into the stage's output


@dataclass
class Claim:
    outcome: ClaimOutcome
    job: Job | None = None  # as written by the claim
    index: int = 0
    lease: Lease | None = None
    phase: Phase = Phase.STAGE
    cursor: Any = None
    item: Any = None  # the item's description, for Phase.ITEM
    items: int = 0  # how many items the stage split into
    republish: list[StageMessage] = field(default_factory=list)


@dataclass(frozen=True)
class Finished:
    """A lease's end as written, and the messages it made due (exactly once); `job` is None
    when the job had ended meanwhile and only the lease was given up."""

    job: Job | None
    due: list[StageMessage]


class LeaseLost(Exception):
    """Our lease expired and someone else took the stage; our result must be thrown away."""


# A lease's end: given the job as it is now, the job as it should be written.
JobUpdate = Callable[[Job], Job]


def due_messages(before: Job, after: Job, stage: str) -> list[StageMessage]:
    """What a change to `stage` made due: the stages it made ready, or its reduce once its
    last item settled."""
    job_id = after.job_id
    due = [
        StageMessage(job_id=job_id, stage=name) for name in transitions.newly_ready(before, after)
    ]
    index = after.stage_index(stage)
    if index is None or after.status.terminal:
        return due
    was, now = before.stages[index].items, after.stages[index].items
    if now is not None and now.complete and not (was is not None and was.complete):
        due.append(StageMessage(job_id=job_id, stage=stage))
    return due


def item_failure(
    job: Job, index: int, item: int, error: ErrorInfo, policy: ItemFailure, now: datetime
) -> Job:
    """The job once an item failed for good: the stage fails, or carries on with a gap."""
    if policy == ItemFailure.GAP:
        return transitions.item_settled(job, index, item, now, failed=True)
    return transitions.stage_failed(job, index, error, now)


def decide_claim(
    job: Job | None, runs: Mapping[str, Run], message: StageMessage, owner: str, settings: Settings
) -> Decision[Claim]:
    """What a delivery of `message` should do, and what it writes."""
    index = job.stage_index(message.stage) if job is not None else None
    if job is None or index is None:
        return Decision(Claim(ClaimOutcome.GONE))
    if job.status.terminal:
        return Decision(Claim(ClaimOutcome.TERMINAL, job=job, index=index))
    stage_run = runs.get(message.stage, Run())
    if message.item is not None:
        return _claim_item(
            job, index, stage_run, runs.get(message.run_name, Run()), message, owner, settings
        )
    return _claim_stage(job, index, stage_run, owner, settings)


def _claim_stage(job: Job, index: int, run: Run, owner: str, settings: Settings) -> Decision[Claim]:
    stage = job.stages[index].name
    if run.done:
        republish = [
            StageMessage(job_id=job.job_id, stage=name)
            for name in transitions.ready(job)
            if stage in transitions.needs_of(job, job.stage_index(name) or 0)
        ]
        return Decision(Claim(ClaimOutcome.DONE, job=job, index=index, republish=republish))
    now = utcnow()
    # A live lease first: the stage's holder ends a job cancelled meanwhile, not a duplicate
    # message arriving while it runs.
    if run.is_live(now):
        return Decision(Claim(ClaimOutcome.BUSY, job=job, index=index))
    if job.cancel_requested:
        cancelled = transitions.job_cancelled(job, index, now)
        return Decision(Claim(ClaimOutcome.CANCELLED, job=cancelled, index=index), job=cancelled)
    items = job.stages[index].items
    if run.items is not None and not (items is not None and items.complete):
        return _items_settling(job, index, run, now)
    reducing = run.items is not None
    # A continuation resumes its attempt, and so does the first reduce after the items.
    resuming = run.status in (RunStatus.CONTINUING, RunStatus.FANNED_OUT)
    if not resuming and run.attempts_left(settings.max_attempts) <= 0:
        return _exhausted(job, index, stage, run, now)
    attempt = run.attempts if resuming else run.attempts + 1
    lease = _lease(job, stage, owner, attempt, run, settings)
    started = transitions.stage_started(job, index, attempt, now, resumed=resuming or reducing)
    leased = run.leased(lease, now, settings.lease_seconds, job.expire_at)
    claim = Claim(
        ClaimOutcome.CLAIMED,
        job=started,
        index=index,
        lease=lease,
        phase=Phase.REDUCE if reducing else Phase.STAGE,
        cursor=run.cursor,
        items=len(run.items or ()),
    )
    return Decision(claim, job=started, runs={stage: leased})


def _items_settling(job: Job, index: int, run: Run, now: datetime) -> Decision[Claim]:
    """A stage message while its items still run: nothing to run; after a retry of the job, the
    stage shows as running again."""
    claim = Claim(ClaimOutcome.FANNED_OUT, job=job, index=index, items=len(run.items or ()))
    if job.stages[index].status == StageStatus.RUNNING:
        return Decision(claim)
    resumed = transitions.stage_started(job, index, max(run.attempts, 1), now, resumed=True)
    claim.job = resumed
    return Decision(claim, job=resumed)


def _claim_item(
    job: Job,
    index: int,
    stage_run: Run,
    run: Run,
    message: StageMessage,
    owner: str,
    settings: Settings,
) -> Decision[Claim]:
    assert message.item is not None
    described = stage_run.items or []
    if message.item >= len(described) or job.stages[index].items is None:
        return Decision(Claim(ClaimOutcome.GONE, job=job, index=index))
    if run.done or run.status == RunStatus.FAILED:  # failed for good under a "gap" policy
        items = job.stages[index].items
        complete = items is not None and items.complete
        reduce_due = complete and stage_run.status == RunStatus.FANNED_OUT
        republish = [StageMessage(job_id=job.job_id, stage=message.stage)] if reduce_due else []
        return Decision(Claim(ClaimOutcome.DONE, job=job, index=index, republish=republish))
    now = utcnow()
    if run.is_live(now):
        return Decision(Claim(ClaimOutcome.BUSY, job=job, index=index))
    if job.cancel_requested:
        cancelled = transitions.job_cancelled(job, index, now)
        return Decision(Claim(ClaimOutcome.CANCELLED, job=cancelled, index=index), job=cancelled)
    resuming = run.status == RunStatus.CONTINUING
    if not resuming and run.attempts_left(settings.max_attempts) <= 0:
        error = exhausted_error(message.stage, run.attempts, run.last_cause())
        policy = stage_run.item_failure or ItemFailure.FAIL
        failed = item_failure(job, index, message.item, error, policy, now)
        released = run.released(RunStatus.FAILED, now, last_error=error, expire_at=job.expire_at)
        claim = Claim(ClaimOutcome.EXHAUSTED, job=failed, index=index)
        claim.republish = due_messages(job, failed, message.stage)
        return Decision(claim, job=failed, runs={message.run_name: released})
    attempt = run.attempts if resuming else run.attempts + 1
    lease = _lease(job, message.stage, owner, attempt, run, settings, item=message.item)
    leased = run.leased(lease, now, settings.lease_seconds, job.expire_at)
    claim = Claim(
        ClaimOutcome.CLAIMED,
        job=job,
        index=index,
        lease=lease,
        phase=Phase.ITEM,
        cursor=run.cursor,
        item=described[message.item],
        items=len(described),
    )
    return Decision(claim, runs={message.run_name: leased})


def _lease(
    job: Job,
    stage: str,
    owner: str,
    attempt: int,
    run: Run,
    settings: Settings,
    item: int | None = None,
) -> Lease:
    final = run.retry_base + settings.max_attempts
    lease_id = uuid.uuid4().hex
    return Lease(job.job_id, stage, owner, lease_id, attempt, final, run.retry_base + 1, item)


def _exhausted(job: Job, index: int, stage: str, run: Run, now: datetime) -> Decision[Claim]:
    error = exhausted_error(stage, run.attempts, run.last_cause())
    failed = transitions.stage_failed(job, index, error, now)
    released = run.released(RunStatus.FAILED, now, expire_at=job.expire_at)
    claim = Claim(ClaimOutcome.EXHAUSTED, job=failed, index=index)
    return Decision(claim, job=failed, runs={stage: released})


def decide_finish(
    job: Job | None, run: Run, lease: Lease, ended: Run, update: JobUpdate
) -> Decision[Finished]:
    """End our lease with the run as `ended` and the job as `update` makes it."""
    if job is None or not run.held_by(lease):
        raise LeaseLost(lease.run_name)
    if job.status.terminal:
        # Another stage or item ended the job meanwhile: that end stands, and this attempt's
        # work is thrown away; the lease is given up now, so a retry of the job runs it again
        # at once instead of waiting for the lease to lapse.
        given_up = run.released(RunStatus.CANCELLED, utcnow())
        return Decision(Finished(None, []), runs={lease.run_name: given_up})
    after = update(job)
    finished = Finished(after, due_messages(job, after, lease.stage))
    return Decision(finished, job=after, runs={lease.run_name: ended})


def decide_heartbeat(run: Run, lease: Lease, seconds: float) -> Decision[bool]:
    if not run.held_by(lease):
        return Decision(False)
    return Decision(True, runs={lease.run_name: run.extended(utcnow(), seconds)})


def decide_checkpoint(run: Run, lease: Lease, cursor: Any) -> Decision[None]:
    if not run.held_by(lease):
        raise LeaseLost(lease.run_name)
    return Decision(None, runs={lease.run_name: run.checkpointed(cursor, utcnow())})


class Leases:
    """Claims, heartbeats and finishes stage runs on behalf of one processor instance."""

    def __init__(self, store: JobStore, settings: Settings, owner: str) -> None:
        self._store = store
        self._settings = settings
        self.owner = owner

    async def claim(self, message: StageMessage) -> Claim:
        """Decide, atomically, what this delivery of `message` should do."""

        def decide(job: Job | None, runs: Mapping[str, Run]) -> Decision[Claim]:
            return decide_claim(job, runs, message, self.owner, self._settings)

        names = {message.stage, message.run_name}
        return await self._store.decide(message.job_id, decide, runs=sorted(names))

    async def unsettled_items(self, job_id: str, stage: str, count: int) -> list[int]:
        """Items of a fanned-out stage that may wait on a message nobody will deliver: never
        claimed, or released to retry or continue, or held by a lease that lapsed."""
        runs = await self._store.get_runs(job_id, [f"{stage}~{n}" for n in range(count)])
        now = utcnow()
        waiting = (None, RunStatus.RETRYING, RunStatus.CONTINUING, RunStatus.RUNNING)
        return [
            n
            for n in range(count)
            if (run := runs.get(f"{stage}~{n}", Run())).status in waiting and not run.is_live(now)
        ]

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend our lease; False once it is no longer ours."""
        seconds = self._settings.lease_seconds
        return await self._store.decide_run(
            lease.job_id, lease.run_name, lambda run: decide_heartbeat(run, lease, seconds)
        )

    async def finish(
        self, lease: Lease, ended: Callable[[Run], Run], update: JobUpdate
    ) -> Finished:
        """End our lease: the run as `ended` makes it and the job's transition, in one atomic
        write. `update` is given the job as it is now (so a cancel requested meanwhile is
        seen). Returns the job as written and what it made due; raises LeaseLost if the run
        is no longer ours."""

        def decide(job: Job | None, runs: Mapping[str, Run]) -> Decision[Finished]:
            run = runs.get(lease.run_name, Run())
            return decide_finish(job, run, lease, ended(run), update)

        finished = await self._store.decide(lease.job_id, decide, runs=[lease.run_name])
        if finished.job is None:
            raise LeaseLost(lease.run_name)
        return finished

    async def checkpoint(self, lease: Lease, cursor: Any) -> None:
        """Save a cursor for a later delivery to resume from, while we hold the lease."""
        await self._store.decide_run(
            lease.job_id, lease.run_name, lambda run: decide_checkpoint(run, lease, cursor)
        )
