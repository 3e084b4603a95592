"""What a failed stage attempt means: the one place that tells bad input, a passing outage and a
bug in stage code apart, and turns each into the error clients see."""

from __future__ import annotations

import errno
import socket
from enum import StrEnum

import google.auth.exceptions
import httpx
import requests
from google.api_core import exceptions as api
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse

from jobs.contract.errors import LongrunError, PermanentError
from jobs.contract.models import ErrorInfo


class Failure(StrEnum):
    PERMANENT = "permanent"  # can never succeed (bad input): fail the job now
    TRANSIENT = "transient"  # infrastructure that may recover: retry up to max_attempts
    UNEXPECTED = "unexpected"  # a bug in stage code: retry once, then fail INTERNAL


# google.api_core errors that mean "try again"; any other client error is deterministic.
_RETRYABLE_API = (
    api.ServiceUnavailable,
    api.DeadlineExceeded,
    api.InternalServerError,
    api.BadGateway,
    api.GatewayTimeout,
    api.TooManyRequests,  # ResourceExhausted (gRPC) is one: quota and rate limits pass
    api.Aborted,
    api.Unknown,
    api.RetryError,
)
_RETRYABLE_HTTP = frozenset({408, 429, 500, 502, 503, 504})
_NETWORK_ERRNOS = frozenset({
    errno.ECONNRESET, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT, errno.EPIPE,
    errno.EHOSTUNREACH, errno.EHOSTDOWN, errno.ENETUNREACH, errno.ENETDOWN, errno.ENETRESET,
})  # fmt: skip
_NETWORK_ERRORS = (
    TimeoutError,
    ConnectionError,
    httpx.TransportError,
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    google.auth.exceptions.TransportError,
    DataCorruption,  # a download cut short or garbled on the way: fetch it again
)
# Longest text of an infrastructure error shown to users (its cause, not its traceback).
_MAX_CAUSE_TEXT = 200


def classify(exc: BaseException) -> Failure:
    """Whether a failed attempt may succeed if tried again, and how often it deserves to be."""
    if isinstance(exc, PermanentError):
        return Failure.PERMANENT
    if isinstance(exc, LongrunError) or _is_infrastructure(exc):
        return Failure.TRANSIENT
    return Failure.UNEXPECTED


def _is_infrastructure(exc: BaseException) -> bool:
    if isinstance(exc, _RETRYABLE_API + _NETWORK_ERRORS):
        return True
    if isinstance(exc, socket.gaierror):
        return exc.errno == socket.EAI_AGAIN  # a name that does not exist stays so
    if isinstance(exc, OSError) and exc.errno in _NETWORK_ERRNOS:
        return True
    status = _http_status(exc)
    return status is not None and status in _RETRYABLE_HTTP


def _http_status(exc: BaseException) -> int | None:
    """The HTTP status an error from Storage or an HTTP client carries, if any."""
    response = None
    if isinstance(exc, InvalidResponse | requests.HTTPError | httpx.HTTPStatusError):
        response = exc.response
    status = getattr(response, "status_code", None)
    return status if isinstance(status, int) else None


def error_info(exc: BaseException, failure: Failure, *, job_id: str, stage: str) -> ErrorInfo:
    """The error clients see for a failed attempt: its real cause, never a traceback."""
    retryable = failure is not Failure.PERMANENT
    if isinstance(exc, LongrunError):
        return ErrorInfo(code=exc.code, message=exc.message, retryable=retryable)
    name = type(exc).__name__
    if failure is Failure.TRANSIENT:
        cause = f"{name}: {exc}" if str(exc) else name
        message = f"A temporary failure in stage {stage}: {cause[:_MAX_CAUSE_TEXT]}"
        return ErrorInfo(code="TRANSIENT", message=message, retryable=True)
    # Stage code's own text may hold anything (paths, data): it goes to the logs only.
    message = f"Unexpected {name} in stage {stage} (see the processor logs for job {job_id})."
    return ErrorInfo(code="INTERNAL", message=message, retryable=retryable)
