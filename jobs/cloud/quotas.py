"""Per-user quotas kept in Firestore, so every service instance enforces the same limits.

A user's quota is a fixed set of slot documents in `quota_slots`: `<uid>:hour:<k>` for
k < `jobs_per_hour` and `<uid>:active:<k>` for k < `active_jobs_per_user`. Admitting a job claims
one slot of each kind by a conditional write, never a transaction: `create()` takes a slot that
does not exist, an update preconditioned on the slot's last update time takes one that has come
free. Concurrent submits of one user try the free slots in random order, so they spread over
different documents, and a lost race costs one failed write and moves on to the next slot
(a contended transaction costs seconds on the emulator and aborts in production).

An hour slot comes free an hour after its claim, so at most `jobs_per_hour` jobs start in any
rolling hour. An active slot is deleted when its job ends (`release`), and one whose job is found
ended or missing counts as free too, so a release that never happened heals itself.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from google.api_core import exceptions
from google.cloud import firestore
from google.cloud.firestore import FieldFilter

from jobs.cloud.backend import OUTAGE, Deadline
from jobs.cloud.store import JobStore
from jobs.contract.errors import TooManyRequests
from jobs.contract.models import JobStatus, utcnow
from jobs.contract.settings import Settings

log = logging.getLogger(__name__)

HOUR = timedelta(hours=1)
# A claim this young whose job is not written yet is held: the submit that made it is between
# its claim and its job's creation.
CLAIM_GRACE = timedelta(seconds=60)
# Reads of a user's slots per claim: when every slot that looked free went to someone else, a
# later read may see one freed meanwhile. A read that shows no free slot at all is the answer.
_ROUNDS = 3
# Retry-After for a full concurrency quota when no active job has an estimate yet.
_DEFAULT_ACTIVE_WAIT_SECONDS = 30
_MAX_ACTIVE_WAIT_SECONDS = 900
_ACTIVE = frozenset({JobStatus.QUEUED.value, JobStatus.RUNNING.value})
HOUR_SLOT = "hour"
ACTIVE_SLOT = "active"
# Firebase uids are like this; any other owner string is hashed into a valid document id.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
# What a conditional write raises when another writer got there first.
Snapshot = firestore.DocumentSnapshot[firestore.AsyncDocumentReference]
_LOST_RACE = (exceptions.AlreadyExists, exceptions.FailedPrecondition, exceptions.NotFound)


@dataclass(frozen=True)
class SlotClaim:
    """One slot this request took; `update_time` lets `undo` remove exactly this claim."""

    ref: firestore.AsyncDocumentReference
    update_time: datetime


class Quotas:
    """Claims and frees one user's quota slots."""

    def __init__(self, store: JobStore, settings: Settings) -> None:
        self._client = store.client
        self._store = store  # the owner of job documents: asked which jobs still hold slots
        self._slots = store.client.collection(settings.quota_slots_collection)
        self._per_hour = settings.jobs_per_hour
        self._active = settings.active_jobs_per_user
        self._job_ttl = timedelta(days=settings.job_ttl_days)
        self._deadline = Deadline(settings.backend_timeout_seconds)

    async def admit(self, owner: str, job_id: str) -> list[SlotClaim]:
        """Claim an hour slot and an active slot for a new job, or raise TooManyRequests."""
        claims: list[SlotClaim] = []
        try:
            with self._deadline.unavailable():
                if self._per_hour:
                    claims.append(await self._claim_hour(owner, job_id))
                if self._active:
                    claims.append(await self._claim_active(owner, job_id))
        except BaseException:
            await self.undo(claims)
            raise
        return claims

    async def admit_again(self, owner: str, job_id: str) -> list[SlotClaim]:
        """Claim an active slot for a job that is queued again (a retry); it started before,
        so it takes no hour slot."""
        if not self._active:
            return []
        with self._deadline.unavailable():
            return [await self._claim_active(owner, job_id)]

    @asynccontextmanager
    async def admitted(
        self, owner: str, job_id: str, *, again: bool = False
    ) -> AsyncIterator[list[SlotClaim]]:
        """Claim the job's slots for the block; if the block fails, they are given back."""
        claims = await (self.admit_again if again else self.admit)(owner, job_id)
        try:
            yield claims
        except BaseException:
            await self.undo(claims)
            raise

    async def undo(self, claims: list[SlotClaim]) -> None:
        """Give back claims whose job was not made after all; one taken over since is left."""
        for claim in claims:
            try:
                option = self._unchanged_since(claim.update_time)
                await claim.ref.delete(option=option, **self._deadline.options())
            except _LOST_RACE:
                pass
            except OUTAGE:
                # A claim whose job was never written counts as free after CLAIM_GRACE.
                log.warning("could not give back a quota slot; it frees itself", exc_info=True)

    async def release(self, job_id: str, ended_at: datetime) -> None:
        """Free the active slot of a job that ended at `ended_at`; safe to repeat.

        A slot claimed after `ended_at` belongs to a retry of the job and stays.
        """
        if not self._active:
            return
        query = self._slots.where(filter=FieldFilter("job_id", "==", job_id))
        async for snapshot in query.stream(**self._deadline.options()):
            data = snapshot.to_dict() or {}
            if data.get("kind") != ACTIVE_SLOT or data["claimed_at"] > ended_at:
                continue
            with suppress(*_LOST_RACE):  # taken over meanwhile: it is not this job's any more
                option = self._unchanged_since(snapshot.update_time)
                await snapshot.reference.delete(option=option, **self._deadline.options())

    async def _claim_hour(self, owner: str, job_id: str) -> SlotClaim:
        refs = self._refs(owner, HOUR_SLOT, self._per_hour)
        for _ in range(_ROUNDS):
            snapshots = await self._read(refs)
            now = utcnow()
            free = [s for s in snapshots if not s.exists or s.get("claimed_at") <= now - HOUR]
            claim = await self._take_any(free, self._fields(owner, HOUR_SLOT, job_id, now, HOUR))
            if claim is not None:
                return claim
            if not free:
                break
        claimed = [s.get("claimed_at") for s in snapshots if s.exists]
        wait = min(((c + HOUR - now).total_seconds() for c in claimed), default=1.0)
        raise _refused(
            owner,
            "HOURLY_LIMIT",
            f"You have started {self._per_hour} jobs in the last hour, the most allowed.",
            max(1, math.ceil(wait)),
        )

    async def _claim_active(self, owner: str, job_id: str) -> SlotClaim:
        refs = self._refs(owner, ACTIVE_SLOT, self._active)
        jobs: dict[str, dict[str, Any]] = {}
        for _ in range(_ROUNDS):
            snapshots = await self._read(refs)
            now = utcnow()
            free = [s for s in snapshots if not s.exists]
            if not free:  # only then is it worth reading the jobs that hold the slots
                jobs = await self._jobs_of(snapshots)
                free = [s for s in snapshots if _active_slot_free(s.to_dict() or {}, jobs, now)]
            fields = self._fields(owner, ACTIVE_SLOT, job_id, now, self._job_ttl)
            claim = await self._take_any(free, fields)
            if claim is not None:
                return claim
            if not free:
                break
        raise _refused(
            owner,
            "CONCURRENCY_LIMIT",
            f"You have {self._active} jobs queued or running, the most allowed at once; "
            "try again when one has ended.",
            _active_wait_seconds(jobs),
        )

    def _refs(self, owner: str, kind: str, count: int) -> list[firestore.AsyncDocumentReference]:
        name = owner if _PLAIN_ID.fullmatch(owner) else hashlib.sha256(owner.encode()).hexdigest()
        return [self._slots.document(f"{name}:{kind}:{k}") for k in range(count)]

    async def _read(self, refs: list[firestore.AsyncDocumentReference]) -> list[Snapshot]:
        """All the slots in one batched read (order not kept; the claim order is random anyway)."""
        found = self._client.get_all(refs, **self._deadline.options())
        return [snapshot async for snapshot in found]

    async def _jobs_of(self, snapshots: list[Snapshot]) -> dict[str, dict[str, Any]]:
        """The jobs holding these slots (what decides whether they still need them)."""
        job_ids = [s.get("job_id") for s in snapshots if s.exists]
        return await self._store.job_fields(job_ids, ["status", "finished_at", "eta_seconds"])

    @staticmethod
    def _fields(
        owner: str, kind: str, job_id: str, now: datetime, keep: timedelta
    ) -> dict[str, Any]:
        return {
            "owner": owner,
            "kind": kind,
            "job_id": job_id,
            "claimed_at": now,
            "expire_at": now + keep,  # Firestore TTL; a slot gone is a free slot
        }

    async def _take_any(self, free: list[Snapshot], fields: dict[str, Any]) -> SlotClaim | None:
        """Take the first of the free slots no one else takes first, trying them in random order."""
        for snapshot in random.sample(free, len(free)):
            try:
                if snapshot.exists:
                    option = self._unchanged_since(snapshot.update_time)
                    result = await snapshot.reference.update(
                        fields, option=option, **self._deadline.options()
                    )
                else:
                    result = await snapshot.reference.create(fields, **self._deadline.options())
            except _LOST_RACE:
                continue
            return SlotClaim(snapshot.reference, result.update_time)
        return None

    def _unchanged_since(self, update_time: datetime) -> Any:
        return self._client.write_option(last_update_time=update_time)


def _active_slot_free(slot: dict[str, Any], jobs: dict[str, dict[str, Any]], now: datetime) -> bool:
    """Whether an active slot's job no longer needs it: ended, or never written.

    A young claim is held even so: its job may be about to be written, or (a retry) to be
    queued again; a job that ended after the claim was made has surely let it go.
    """
    job = jobs.get(slot.get("job_id", ""))
    if job is not None and job.get("status") in _ACTIVE:
        return False
    claimed_at: datetime = slot["claimed_at"]
    if claimed_at < now - CLAIM_GRACE:
        return True
    finished_at = job.get("finished_at") if job else None
    return finished_at is not None and finished_at >= claimed_at


def _refused(owner: str, code: str, message: str, wait_seconds: int) -> TooManyRequests:
    log.info(
        "quota reached",
        extra={"owner": owner, "code": code, "retry_after_seconds": wait_seconds},
    )
    return TooManyRequests(message, code=code, retry_after_seconds=wait_seconds)


def _active_wait_seconds(jobs: dict[str, dict[str, Any]]) -> int:
    """A hint for when a slot may come free: the soonest estimated end of an active job."""
    etas = [
        float(job["eta_seconds"])
        for job in jobs.values()
        if job.get("status") in _ACTIVE and job.get("eta_seconds") is not None
    ]
    if not etas:
        return _DEFAULT_ACTIVE_WAIT_SECONDS
    return min(_MAX_ACTIVE_WAIT_SECONDS, max(1, math.ceil(min(etas))))


async def release_quietly(quotas: Quotas, job_id: str, ended_at: datetime) -> None:
    """`release`, for callers whose own work must not fail with it: a slot left behind is
    found free by the next claim anyway."""
    try:
        await quotas.release(job_id, ended_at)
    except (exceptions.GoogleAPIError, TimeoutError):
        log.warning("could not free the job's quota slot; the next claim will", exc_info=True)
