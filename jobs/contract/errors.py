"""The one error hierarchy: each error knows its stable code and whether a retry may help.

HTTP status codes are chosen in `jobs.telemetry.problems`; Pub/Sub ack or nack in `processor.push`.
"""

from __future__ import annotations

from typing import Any


class LongrunError(Exception):
    """Base of every error longrun raises on purpose; `code` is stable, `message` is for humans."""

    code = "INTERNAL"
    http_status = 500

    def __init__(self, message: str, *, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details


class PermanentError(LongrunError):
    """A stage can never succeed with this input (bad input, unsupported media): fail the job."""

    code = "STAGE_FAILED"
    http_status = 422


class BudgetExceeded(PermanentError):
    """A job's cost (estimated at submit, or spent while running) is over its `max_cost_usd`."""

    code = "BUDGET_EXCEEDED"
    http_status = 422


class TransientError(LongrunError):
    """A stage failed for a reason that may pass (a flaky dependency): try the stage again."""

    code = "TRANSIENT"
    http_status = 503


class JobCancelled(LongrunError):
    """Raised inside a stage by `check_cancelled()` once the user has asked to cancel."""

    code = "CANCELLED"
    http_status = 409


class Unauthenticated(LongrunError):
    """No usable credentials: answered 401 with a `WWW-Authenticate` challenge."""

    code = "UNAUTHENTICATED"
    http_status = 401


class Forbidden(LongrunError):
    """The caller is known but may not do this (an anonymous user where they are not allowed)."""

    code = "FORBIDDEN"
    http_status = 403


class NotFound(LongrunError):
    code = "NOT_FOUND"
    http_status = 404


class Conflict(LongrunError):
    code = "CONFLICT"
    http_status = 409


class InvalidRequest(LongrunError):
    """The request is well-formed but its content is not acceptable; `field` names the culprit."""

    code = "VALIDATION_FAILED"
    http_status = 422


class Unavailable(LongrunError):
    code = "UNAVAILABLE"
    http_status = 503


class TooManyRequests(LongrunError):
    """A per-user limit is reached; `retry_after_seconds` (a detail) says when to try again."""

    code = "TOO_MANY_REQUESTS"
    http_status = 429
