"""The OpenAPI document: every error answer described with the problem+json schema it has."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from jobs.telemetry.problems import PROBLEM_JSON, FieldError, Problem

_REF = "#/components/schemas/{model}"

_ERRORS = {
    400: "The request is malformed (for example, not JSON).",
    401: "No valid Firebase ID token: see the `WWW-Authenticate` header.",
    403: "The caller may not use this API (for example, an anonymous user where not allowed).",
    404: "No such resource of the caller's (another user's looks exactly the same).",
    409: "The resource is not in a state that allows this.",
    413: "The request body is larger than the service takes.",
    422: "The request is well-formed but not acceptable; `errors` names the fields.",
    429: "A quota is used up; `Retry-After` says when to try again.",
    500: "Something failed on the service's side; it was logged.",
    503: "A dependency is unavailable; try again shortly.",
}
_RETRY_AFTER = {
    "Retry-After": {
        "description": "Seconds to wait before trying again.",
        "schema": {"type": "integer"},
    }
}


def problem(
    status: int, description: str | None = None, *, retry_after: bool = False
) -> dict[str, Any]:
    """One error response of a route, for `responses=`."""
    response: dict[str, Any] = {
        "description": description or _ERRORS[status],
        "content": {PROBLEM_JSON: {"schema": {"$ref": _REF.format(model="Problem")}}},
    }
    if retry_after or status in (429, 503):
        response["headers"] = _RETRY_AFTER
    return response


def problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: problem(status) for status in statuses}


# Every authenticated route can answer these, whatever else it does.
AUTHENTICATED = problems(401, 403, 413, 500, 503)


def install_openapi(app: FastAPI) -> None:
    """Build the document once, with the problem schemas the responses refer to."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            schemas = schema.setdefault("components", {}).setdefault("schemas", {})
            for model in (Problem, FieldError):
                schemas[model.__name__] = model.model_json_schema(ref_template=_REF)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
