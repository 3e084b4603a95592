"""Stage leases: who may run a stage now, claimed and released in Firestore transactions.

The lease lives in `jobs/{id}/runs/{stage}`, not in the job document, so that heartbeats never
wake the clients listening to the job. Every transaction here also writes the job document's
matching transition, so the two never disagree.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum
from typing import Any

from google.cloud import firestore

from jobs.models import ErrorInfo, Job, StageStatus, utcnow
from jobs.settings import Settings
from jobs.store import JobStore, job_from_document, job_to_document, stamped
from processor import transitions


class RunStatus(StrEnum):
    RUNNING = "running"
    RETRYING = "retrying"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


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
    job: Job | None = None
    index: int = 0
    attempt: int = 0
    cursor: Any = None
    republish: str | None = None


class LeaseLost(Exception):
    """Our lease expired and someone else took the stage; our result must be thrown away."""


JobUpdate = Callable[[Job], dict[str, Any]]


def _released(status: RunStatus, **fields: Any) -> dict[str, Any]:
    return {
        "status": status.value,
        "lease_owner": None,
        "lease_expires_at": None,
        "updated_at": utcnow(),
        **fields,
    }


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
            run_snapshot = await run_ref.get(transaction=tx)
            run = run_snapshot.to_dict() or {}
            if run.get("status") == RunStatus.DONE:
                return Claim(
                    ClaimOutcome.DONE, job=job, index=index, republish=_to_republish(job, index)
                )
            now = utcnow()
            if job.cancel_requested:
                tx.update(job_ref, stamped(transitions.job_cancelled(job, index, now)))
                return Claim(ClaimOutcome.CANCELLED, job=job, index=index)
            expires = run.get("lease_expires_at")
            if run.get("lease_owner") and expires is not None and expires > now:
                return Claim(ClaimOutcome.BUSY, job=job, index=index)
            attempts = int(run.get("attempts", 0))
            if attempts >= self._settings.max_attempts:
                error = exhausted_error(stage, attempts)
                tx.update(job_ref, stamped(transitions.stage_failed(job, index, error, now)))
                tx.set(run_ref, _released(RunStatus.FAILED), merge=True)
                return Claim(ClaimOutcome.EXHAUSTED, job=job, index=index)
            lease = {
                "status": RunStatus.RUNNING.value,
                "lease_owner": self.owner,
                "lease_expires_at": now + timedelta(seconds=self._settings.lease_seconds),
                "attempts": attempts + 1,
                "started_at": run.get("started_at") or now,
                "updated_at": now,
            }
            tx.set(run_ref, lease, merge=True)
            tx.update(job_ref, stamped(transitions.stage_started(job, index, attempts + 1, now)))
            return Claim(
                ClaimOutcome.CLAIMED,
                job=job,
                index=index,
                attempt=attempts + 1,
                cursor=run.get("cursor"),
            )

        claim: Claim = await attempt_claim(self._store.client.transaction())
        return claim

    async def heartbeat(self, job_id: str, stage: str, attempt: int) -> bool:
        """Extend our lease; False once it is no longer ours."""
        run_ref = self._store.run_ref(job_id, stage)

        @firestore.async_transactional
        async def extend(tx: firestore.AsyncTransaction) -> bool:
            run = (await run_ref.get(transaction=tx)).to_dict() or {}
            if not self._holds(run, attempt):
                return False
            expires = utcnow() + timedelta(seconds=self._settings.lease_seconds)
            tx.update(run_ref, {"lease_expires_at": expires})
            return True

        held: bool = await extend(self._store.client.transaction())
        return held

    async def finish(
        self,
        job_id: str,
        stage: str,
        attempt: int,
        run_fields: dict[str, Any],
        job_update: JobUpdate,
    ) -> Job:
        """End our attempt: write the run's fields and the job's transition in one transaction.

        `job_update` is given the job as it is now (so a cancel requested meanwhile is seen) and
        returns the fields to write. Returns the job as written; raises LeaseLost if the stage is
        no longer ours.
        """
        job_ref = self._store.job_ref(job_id)
        run_ref = self._store.run_ref(job_id, stage)

        @firestore.async_transactional
        async def commit(tx: firestore.AsyncTransaction) -> Job:
            run = (await run_ref.get(transaction=tx)).to_dict() or {}
            job_snapshot = await job_ref.get(transaction=tx)
            if not self._holds(run, attempt) or not job_snapshot.exists:
                raise LeaseLost(f"{job_id}/{stage} attempt {attempt}")
            before = job_from_document(job_snapshot.to_dict() or {})
            fields = job_update(before)
            tx.set(run_ref, run_fields, merge=True)
            tx.update(job_ref, stamped(fields))
            return job_from_document({**job_to_document(before), **fields})

        job: Job = await commit(self._store.client.transaction())
        return job

    async def checkpoint(self, job_id: str, stage: str, attempt: int, cursor: Any) -> None:
        """Save a stage cursor for a later attempt to resume from, while we hold the lease."""
        run_ref = self._store.run_ref(job_id, stage)

        @firestore.async_transactional
        async def save(tx: firestore.AsyncTransaction) -> None:
            run = (await run_ref.get(transaction=tx)).to_dict() or {}
            if not self._holds(run, attempt):
                raise LeaseLost(f"{job_id}/{stage} attempt {attempt}")
            tx.update(run_ref, {"cursor": cursor, "updated_at": utcnow()})

        await save(self._store.client.transaction())

    def _holds(self, run: dict[str, Any], attempt: int) -> bool:
        return (
            run.get("lease_owner") == self.owner
            and run.get("attempts") == attempt
            and run.get("status") == RunStatus.RUNNING
        )


def done_fields(output: Any) -> dict[str, Any]:
    now = utcnow()
    return _released(RunStatus.DONE, output=output, finished_at=now, cursor=None)


def failed_fields(error: ErrorInfo) -> dict[str, Any]:
    return _released(RunStatus.FAILED, last_error=error.model_dump(), finished_at=utcnow())


def cancelled_fields() -> dict[str, Any]:
    return _released(RunStatus.CANCELLED, finished_at=utcnow())


def retry_fields(error: ErrorInfo) -> dict[str, Any]:
    return _released(RunStatus.RETRYING, last_error=error.model_dump())


def exhausted_error(stage: str, attempts: int) -> ErrorInfo:
    return ErrorInfo(
        code="RETRIES_EXHAUSTED",
        message=f"Gave up after {attempts} attempts.",
        retryable=False,
        stage=stage,
    )


def _to_republish(job: Job, index: int) -> str | None:
    """After a duplicate of a done stage: the next stage, if nobody has started it yet."""
    following = transitions.next_pending(job, index)
    if following is None or job.stages[following].status != StageStatus.PENDING:
        return None
    return job.stages[following].name
