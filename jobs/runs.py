"""The internal run document of one stage, `jobs/{id}/runs/{stage}`: lease, attempts, output.

Clients never read it (the security rules close it), and lease heartbeats written here never
wake the listeners on the job document.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from jobs.models import ErrorInfo, utcnow


class RunStatus(StrEnum):
    RUNNING = "running"  # leased: someone is (or was, if the lease expired) running it
    RETRYING = "retrying"  # an attempt failed transiently; the next delivery tries again
    CONTINUING = "continuing"  # the time budget ran out; the next delivery resumes the cursor
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"


def lease_is_live(run: dict[str, Any], now: datetime) -> bool:
    """Whether someone holds the stage's lease right now."""
    expires = run.get("lease_expires_at")
    return bool(run.get("lease_owner")) and expires is not None and expires > now


def attempts_left(run: dict[str, Any], max_attempts: int) -> int:
    """Attempts a stage may still make; a retry of its job gives it a fresh allowance."""
    used = int(run.get("attempts", 0)) - int(run.get("retry_base", 0))
    return max_attempts - used


def released(status: RunStatus, **fields: Any) -> dict[str, Any]:
    """Run fields that end a lease with the given status."""
    return {
        "status": status.value,
        "lease_owner": None,
        "lease_id": None,
        "lease_expires_at": None,
        "updated_at": utcnow(),
        **fields,
    }


def done_fields(output: Any) -> dict[str, Any]:
    return released(RunStatus.DONE, output=output, finished_at=utcnow(), cursor=None)


def failed_fields(error: ErrorInfo) -> dict[str, Any]:
    return released(RunStatus.FAILED, last_error=error.model_dump(), finished_at=utcnow())


def cancelled_fields() -> dict[str, Any]:
    return released(RunStatus.CANCELLED, finished_at=utcnow())


def retry_fields(error: ErrorInfo) -> dict[str, Any]:
    return released(RunStatus.RETRYING, last_error=error.model_dump())


def continuing_fields() -> dict[str, Any]:
    return released(RunStatus.CONTINUING)


def exhausted_error(stage: str, attempts: int, last_error: str | None = None) -> ErrorInfo:
    message = f"Gave up after {attempts} attempts."
    if last_error:
        message = f"{message} Last error: {last_error}"
    return ErrorInfo(code="RETRIES_EXHAUSTED", message=message, retryable=False, stage=stage)
