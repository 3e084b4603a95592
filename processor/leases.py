"""Stage leases: who may run a stage now, claimed and released in Firestore transactions.

Every transaction here also writes the job document's matching transition, so the lease and what
clients see never disagree.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from google.cloud import firestore

from jobs import transitions
from jobs.models import Job, StageStatus, utcnow
from jobs.runs import RunStatus, attempts_left, exhausted_error, lease_is_live, released
from jobs.settings import Settings
from jobs.store import JobStore, job_from_document, stamped, with_fields


class ClaimOutcome(StrEnum):
    CLAIMED = "claimed"  # the lease is ours: run the stage
    DONE = "done"  # the stage already succeeded: ack, maybe re-publish the next one
    BUSY = "busy"  # someone alive holds the lease: let Pub/Sub deliver again later
    GONE = "gone"  # no such job or stage: nothing will ever run it
    TERMINAL = "terminal"  # the job already ended
    CANCELLED = "cancelled"  # the user cancelled; this claim made it final
    EXHAUSTED = "exhausted"  # no attempts left; this claim failed the job


@dataclass(frozen=True)
class Lease:
    """One claim of one stage: `lease_id` tells this claim from every other, even our own."""

    job_id: str
    stage: str
    lease_id: str
    attempt: int
    final_attempt: int  # a transient failure of this attempt fails the job
    first_attempt: int = 1  # the first of this allowance (a job retry starts a new one)


@dataclass
class Claim:
    outcome: ClaimOutcome
    job: Job | None = None
    index: int = 0
    lease: Lease | None = None
    cursor: Any = None
    republish: str | None = None


class LeaseLost(Exception):
    """Our lease expired and someone else took the stage; our result must be thrown away."""


JobUpdate = Callable[[Job], dict[str, Any]]


class Leases:
    """Claims, heartbeats and finishes stage runs on behalf of one processor instance."""

    def __init__(self, store: JobStore, settings: Settings, owner: str) -> None:
        self._store = store
        self._settings = settings
        self.owner = owner

    async def claim(self, job_id: str, stage: str) -> Claim:
        """Decide, atomically, what this delivery of (job, stage) should do."""
        job_ref = self._store.job_ref(job_id)
        run_ref = self._store.run_ref(job_id, stage)

        @firestore.async_transactional
        async def attempt_claim(tx: firestore.AsyncTransaction) -> Claim:
            job_snapshot = await job_ref.get(transaction=tx)
            if not job_snapshot.exists:
                return Claim(ClaimOutcome.GONE)
            job = job_from_document(job_snapshot.to_dict() or {})
            index = job.stage_index(stage)
            if index is None:
                return Claim(ClaimOutcome.GONE)
            if job.status.terminal:
                return Claim(ClaimOutcome.TERMINAL, job=job, index=index)
            run = (await run_ref.get(transaction=tx)).to_dict() or {}
            if run.get("status") == RunStatus.DONE:
                republish = _to_republish(job, index)
                return Claim(ClaimOutcome.DONE, job=job, index=index, republish=republish)
            now = utcnow()
            # A live lease first: the stage's holder ends a job cancelled meanwhile, not a
            # duplicate message arriving while it runs.
            if lease_is_live(run, now):
                return Claim(ClaimOutcome.BUSY, job=job, index=index)
            if job.cancel_requested:
                fields = transitions.job_cancelled(job, index, now)
                tx.update(job_ref, stamped(fields))
                return Claim(ClaimOutcome.CANCELLED, job=with_fields(job, fields), index=index)
            attempts = int(run.get("attempts", 0))
            resuming = run.get("status") == RunStatus.CONTINUING
            if not resuming and attempts_left(run, self._settings.max_attempts) <= 0:
                error = exhausted_error(stage, attempts, _last_cause(run))
                fields = transitions.stage_failed(job, index, error, now)
                tx.update(job_ref, stamped(fields))
                tx.set(run_ref, released(RunStatus.FAILED, expire_at=job.expire_at), merge=True)
                return Claim(ClaimOutcome.EXHAUSTED, job=with_fields(job, fields), index=index)
            attempt = attempts if resuming else attempts + 1
            base = int(run.get("retry_base", 0))
            final = base + self._settings.max_attempts
            lease = Lease(job_id, stage, uuid.uuid4().hex, attempt, final, first_attempt=base + 1)
            tx.set(run_ref, self._lease_fields(run, lease, now, job.expire_at), merge=True)
            started = transitions.stage_started(job, index, attempt, now, resumed=resuming)
            tx.update(job_ref, stamped(started))
            return Claim(
                ClaimOutcome.CLAIMED, job=job, index=index, lease=lease, cursor=run.get("cursor")
            )

        claim: Claim = await attempt_claim(self._store.client.transaction())
        return claim

    def _lease_fields(
        self, run: dict[str, Any], lease: Lease, now: Any, expire_at: Any
    ) -> dict[str, Any]:
        return {
            "status": RunStatus.RUNNING.value,
            "lease_owner": self.owner,
            "lease_id": lease.lease_id,
            "lease_expires_at": now + timedelta(seconds=self._settings.lease_seconds),
            "attempts": lease.attempt,
            "deliveries": int(run.get("deliveries", 0)) + 1,
            "started_at": run.get("started_at") or now,
            "updated_at": now,
            "expire_at": expire_at,  # Firestore's TTL does not delete subcollections with the job
        }

    async def heartbeat(self, lease: Lease) -> bool:
        """Extend our lease; False once it is no longer ours."""
        run_ref = self._store.run_ref(lease.job_id, lease.stage)

        @firestore.async_transactional
        async def extend(tx: firestore.AsyncTransaction) -> bool:
            run = (await run_ref.get(transaction=tx)).to_dict() or {}
            if not self._holds(run, lease):
                return False
            expires = utcnow() + timedelta(seconds=self._settings.lease_seconds)
            tx.update(run_ref, {"lease_expires_at": expires})
            return True

        held: bool = await extend(self._store.client.transaction())
        return held

    async def finish(self, lease: Lease, run_fields: dict[str, Any], job_update: JobUpdate) -> Job:
        """End our lease: write the run's fields and the job's transition in one transaction.

        `job_update` is given the job as it is now (so a cancel requested meanwhile is seen) and
        returns the fields to write. Returns the job as written; raises LeaseLost if the stage is
        no longer ours.
        """
        job_ref = self._store.job_ref(lease.job_id)
        run_ref = self._store.run_ref(lease.job_id, lease.stage)

        @firestore.async_transactional
        async def commit(tx: firestore.AsyncTransaction) -> Job:
            run = (await run_ref.get(transaction=tx)).to_dict() or {}
            job_snapshot = await job_ref.get(transaction=tx)
            if not self._holds(run, lease) or not job_snapshot.exists:
                raise LeaseLost(f"{lease.job_id}/{lease.stage}")
            before = job_from_document(job_snapshot.to_dict() or {})
            if before.status.terminal:  # ended while our lease had lapsed: that end stands
                raise LeaseLost(f"{lease.job_id}/{lease.stage}")
            fields = job_update(before)
            tx.set(run_ref, run_fields, merge=True)
            tx.update(job_ref, stamped(fields))
            return with_fields(before, fields)

        job: Job = await commit(self._store.client.transaction())
        return job

    async def checkpoint(self, lease: Lease, cursor: Any) -> None:
        """Save a stage cursor for a later delivery to resume from, while we hold the lease."""
        run_ref = self._store.run_ref(lease.job_id, lease.stage)

        @firestore.async_transactional
        async def save(tx: firestore.AsyncTransaction) -> None:
            run = (await run_ref.get(transaction=tx)).to_dict() or {}
            if not self._holds(run, lease):
                raise LeaseLost(f"{lease.job_id}/{lease.stage}")
            tx.update(run_ref, {"cursor": cursor, "updated_at": utcnow()})

        await save(self._store.client.transaction())

    def _holds(self, run: dict[str, Any], lease: Lease) -> bool:
        return (
            run.get("lease_owner") == self.owner
            and run.get("lease_id") == lease.lease_id
            and run.get("status") == RunStatus.RUNNING
        )


def _last_cause(run: dict[str, Any]) -> str | None:
    """What the last attempt died of, so giving up still says why."""
    if run.get("status") == RunStatus.RUNNING:  # its lease lapsed with nothing recorded
        return "The processor running the last attempt stopped before it could finish."
    last = run.get("last_error")
    message = last.get("message") if isinstance(last, dict) else None
    return message if isinstance(message, str) else None


def _to_republish(job: Job, index: int) -> str | None:
    """After a duplicate of a done stage: the next stage, if nobody has started it yet."""
    following = transitions.next_pending(job, index)
    if following is None or job.stages[following].status != StageStatus.PENDING:
        return None
    return job.stages[following].name
