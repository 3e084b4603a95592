"""Errors leave both HTTP services as RFC 9457 problem+json, mapped here and only here."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from jobs.contract.errors import LongrunError

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class FieldError(BaseModel):
    field: str
    message: str


class Problem(BaseModel):
    """The body of every error response."""

    type: str = "about:blank"
    title: str
    status: int
    code: str
    detail: str
    errors: list[FieldError] | None = None


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: list[FieldError] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    title = _TITLES.get(status, "Error")
    detail = _clipped(detail, _MAX_ECHOED_DETAIL)
    if errors is not None:
        errors = [_clipped_error(error) for error in errors[:_MAX_FIELD_ERRORS]]
    body = Problem(title=title, status=status, code=code, detail=detail, errors=errors)
    return JSONResponse(
        body.model_dump(exclude_none=True),
        status_code=status,
        media_type=PROBLEM_JSON,
        headers=headers,
    )


_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    500: "Internal Server Error",
    503: "Service Unavailable",
}


# What a problem echoes of the request is bounded: an unknown key of 500 KB, or ten thousand
# of them, must not come back (twice) in the answer.
_MAX_ECHOED_FIELD = 100
_MAX_ECHOED_MESSAGE = 200
_MAX_FIELD_ERRORS = 20
_MAX_ECHOED_DETAIL = 500
# FastAPI's words for a body its JSON parser gave up on (too deep, not UTF-8, a huge number).
_UNPARSABLE_BODY = "There was an error parsing the body"


def _clipped(text: str, limit: int) -> str:
    return text if len(text) <= limit else f"{text[: limit - 1]}…"


def _clipped_error(error: FieldError) -> FieldError:
    return FieldError(
        field=_clipped(error.field, _MAX_ECHOED_FIELD),
        message=_clipped(error.message, _MAX_ECHOED_MESSAGE),
    )


def _field_name(location: tuple[Any, ...]) -> str:
    # FastAPI prefixes the body's fields with "body"; a client knows them by their own names.
    parts = [str(p) for p in location if p != "body"]
    return ".".join(parts) or "body"


async def _on_longrun_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LongrunError)
    errors = None
    if field := exc.details.get("field"):
        errors = [FieldError(field=str(field), message=exc.message)]
    if extra := exc.details.get("errors"):
        errors = extra
    headers: dict[str, str] | None = exc.details.get("headers")
    if (retry_after := exc.details.get("retry_after_seconds")) is not None:
        headers = {**(headers or {}), "Retry-After": str(int(retry_after))}
    return problem_response(exc.http_status, exc.code, exc.message, errors=errors, headers=headers)


async def _on_validation_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    raw = list(exc.errors())
    if any(error.get("type") == "json_invalid" for error in raw):
        return problem_response(400, "MALFORMED_JSON", "The request body is not valid JSON.")
    errors = [FieldError(field=_field_name(tuple(e["loc"])), message=e["msg"]) for e in raw]
    names = ", ".join(sorted({e.field for e in errors}))
    return problem_response(
        422, "VALIDATION_FAILED", f"The request is not valid: {names}.", errors=errors
    )


async def _on_http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == _UNPARSABLE_BODY:
        return problem_response(400, "MALFORMED_JSON", "The request body is not valid JSON.")
    code = {404: "NOT_FOUND", 405: "METHOD_NOT_ALLOWED"}.get(exc.status_code, "HTTP_ERROR")
    headers = dict(exc.headers or {})
    return problem_response(exc.status_code, code, str(exc.detail), headers=headers or None)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return problem_response(500, "INTERNAL", "Something went wrong on our side; it was logged.")


def install_problem_handlers(app: FastAPI) -> None:
    """Make every error this app can answer with a problem+json body with a stable code."""
    app.add_exception_handler(LongrunError, _on_longrun_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(Exception, _on_unexpected)
