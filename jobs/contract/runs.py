"""The internal run document of one stage, `jobs/{id}/runs/{stage}`, or of one item of a stage
that fans out, `jobs/{id}/runs/{stage}~{n}`: lease, attempts, output.

Clients never read it (the security rules close it), and lease heartbeats written here never
wake the listeners on the job document. Every change is a method that returns a new `Run`; the
store (jobs.cloud.store) writes what changed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict

from jobs.contract.models import ErrorInfo, run_name
from jobs.contract.pipeline import ItemFailure


class RunStatus(StrEnum):
    RUNNING = "running"  # leased: someone is (or was, if the lease expired) running it
    RETRYING = "retrying"  # an attempt failed transiently; the next delivery tries again
    CONTINUING = "continuing"  # the time budget ran out; the next delivery resumes the cursor
    FANNED_OUT = "fanned_out"  # split into items; the delivery after the last one reduces them
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


@dataclass(frozen=True)
class Lease:
    """One claim of one stage (or item): `lease_id` tells this claim from every other."""

    job_id: str
    stage: str
    owner: str  # the processor instance holding it
    lease_id: str
    attempt: int
    final_attempt: int  # a transient failure of this attempt fails the job
    first_attempt: int = 1  # the first of this allowance (a job retry starts a new one)
    item: int | None = None

    @property
    def run_name(self) -> str:
        return run_name(self.stage, self.item)


class Run(BaseModel):
    """`jobs/{job_id}/runs/{stage}`; a stage never claimed reads as `Run()` (status None)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    status: RunStatus | None = None
    lease_owner: str | None = None
    lease_id: str | None = None
    lease_expires_at: datetime | None = None
    attempts: int = 0
    deliveries: int = 0
    # `attempts` when the job was last retried: each retry gives the stage a fresh allowance.
    retry_base: int = 0
    retried_at: datetime | None = None  # messages published before this are stale
    cursor: Any = None
    output: Any = None
    # Where an output too big for this document was stored instead (gs://...json.gz).
    output_uri: str | None = None
    # What the stage split its work into: one JSON-able description per item.
    items: list[Any] | None = None
    item_failure: ItemFailure | None = None  # what an item failing for good does to the stage
    last_error: ErrorInfo | None = None
    started_at: datetime | None = None
    updated_at: datetime | None = None
    finished_at: datetime | None = None
    expire_at: datetime | None = None  # Firestore's TTL does not delete subcollections with jobs

    @property
    def done(self) -> bool:
        return self.status == RunStatus.DONE

    def last_cause(self) -> str | None:
        """What the last attempt died of, so giving up still says why."""
        if self.status == RunStatus.RUNNING:  # its lease lapsed with nothing recorded
            return "The processor running the last attempt stopped before it could finish."
        return self.last_error.message if self.last_error else None

    def is_live(self, now: datetime) -> bool:
        """Whether someone holds the stage's lease right now."""
        expires = self.lease_expires_at
        return bool(self.lease_owner) and expires is not None and expires > now

    def held_by(self, lease: Lease) -> bool:
        """Whether `lease` is still the stage's lease (not lost to another claim)."""
        return (
            self.status == RunStatus.RUNNING
            and self.lease_owner == lease.owner
            and self.lease_id == lease.lease_id
        )

    def attempts_left(self, max_attempts: int) -> int:
        """Attempts the stage may still make; a retry of its job gives it a fresh allowance."""
        return max_attempts - (self.attempts - self.retry_base)

    def leased(self, lease: Lease, now: datetime, seconds: float, expire_at: datetime) -> Run:
        """The run once `lease` took it, for `seconds` from `now`."""
        return self._with(
            status=RunStatus.RUNNING,
            lease_owner=lease.owner,
            lease_id=lease.lease_id,
            lease_expires_at=now + timedelta(seconds=seconds),
            attempts=lease.attempt,
            deliveries=self.deliveries + 1,
            started_at=self.started_at or now,
            updated_at=now,
            expire_at=expire_at,
        )

    def extended(self, now: datetime, seconds: float) -> Run:
        """A heartbeat: the lease holds `seconds` from `now`."""
        return self._with(lease_expires_at=now + timedelta(seconds=seconds))

    def checkpointed(self, cursor: Any, now: datetime) -> Run:
        return self._with(cursor=cursor, updated_at=now)

    def released(self, status: RunStatus, now: datetime, **changes: Any) -> Run:
        """The run once its lease ends with `status`."""
        return self._with(
            status=status,
            lease_owner=None,
            lease_id=None,
            lease_expires_at=None,
            updated_at=now,
            **changes,
        )

    def succeeded(self, output: Any, now: datetime, output_uri: str | None = None) -> Run:
        """Done with `output`, or with the output stored at `output_uri` (then `output` is None)."""
        return self.released(
            RunStatus.DONE, now, output=output, output_uri=output_uri, finished_at=now, cursor=None
        )

    def fanned_out(self, items: list[Any], policy: ItemFailure, now: datetime) -> Run:
        return self.released(
            RunStatus.FANNED_OUT, now, items=items, item_failure=policy, cursor=None
        )

    def failed(self, error: ErrorInfo, now: datetime) -> Run:
        return self.released(RunStatus.FAILED, now, last_error=error, finished_at=now)

    def cancelled(self, now: datetime) -> Run:
        return self.released(RunStatus.CANCELLED, now, finished_at=now)

    def retrying(self, error: ErrorInfo, now: datetime) -> Run:
        return self.released(RunStatus.RETRYING, now, last_error=error)

    def continuing(self, now: datetime) -> Run:
        return self.released(RunStatus.CONTINUING, now)

    def retried(self, now: datetime) -> Run:
        """The user retried the job: a fresh allowance, and older messages become stale."""
        return self._with(
            status=RunStatus.RETRYING, retry_base=self.attempts, retried_at=now, updated_at=now
        )

    def _with(self, **changes: Any) -> Run:
        return self.model_copy(update=changes)


def exhausted_error(stage: str, attempts: int, last_error: str | None = None) -> ErrorInfo:
    message = f"Gave up after {attempts} attempts."
    if last_error:
        message = f"{message} Last error: {last_error}"
    return ErrorInfo(code="RETRIES_EXHAUSTED", message=message, retryable=False, stage=stage)
