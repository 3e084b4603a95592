"""What the API does with oversized, deep or cross-origin requests, and what its OpenAPI says."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from deploy.local.ephemeral import Stack

PROBLEM = "application/problem+json"
MIB = 1024**2


def test_a_body_over_the_limit_is_413_whether_declared_or_streamed(
    stack: Stack, api: httpx.Client
) -> None:
    padding = "x" * (MIB + 10)
    body = {"pipeline": "diagnostic", "input": {"stages": 1}, "note": padding}

    declared = api.post("/v1/jobs", json=body)

    def chunks() -> Iterator[bytes]:  # no Content-Length: the body arrives chunked
        yield b'{"pipeline": "diagnostic", "input": {"stages": 1}, "note": "'
        for _ in range(20):
            yield b"x" * (64 * 1024)
        yield b'"}'

    streamed = api.post("/v1/jobs", content=chunks(), headers={"Content-Type": "application/json"})

    for response in (declared, streamed):
        assert response.status_code == 413
        assert response.headers["content-type"] == PROBLEM
        assert response.json()["code"] == "BODY_TOO_LARGE"
    assert api.get("/v1/jobs").json()["jobs"] == []


def test_a_body_just_under_the_limit_is_read_and_judged_on_its_content(api: httpx.Client) -> None:
    body = {"pipeline": "diagnostic", "input": {"stages": 1}, "note": "x" * (MIB - 200)}

    response = api.post("/v1/jobs", json=body)

    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "note"


@pytest.mark.parametrize("depth", [50, 5000])
def test_deeply_nested_input_is_refused_cleanly(api: httpx.Client, depth: int) -> None:
    nested = "[" * depth + "]" * depth
    raw = '{"pipeline": "diagnostic", "input": {"stages": ' + nested + "}}"

    response = api.post("/v1/jobs", content=raw, headers={"Content-Type": "application/json"})

    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == PROBLEM


@pytest.fixture
def cors_stack(make_stack: Callable[..., Stack]) -> Stack:
    stack: Stack = make_stack(LONGRUN_ALLOWED_ORIGINS='["https://app.example"]')
    return stack


def preflight(stack: Stack, origin: str) -> httpx.Response:
    return httpx.options(
        f"{stack.api_url}/v1/jobs",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, idempotency-key",
        },
        timeout=30,
    )


def test_cors_answers_the_configured_origin_only_and_never_with_credentials(
    cors_stack: Stack,
) -> None:
    allowed = preflight(cors_stack, "https://app.example")
    other = preflight(cors_stack, "https://evil.example")
    with cors_stack.api() as api:
        listed = api.get("/v1/jobs", headers={"Origin": "https://app.example"})

    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == "https://app.example"
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in allowed.headers
    assert "access-control-allow-origin" not in other.headers
    assert listed.headers["access-control-allow-origin"] == "https://app.example"
    assert "etag" in listed.headers["access-control-expose-headers"].lower()


def test_the_openapi_document_describes_auth_and_every_error(stack: Stack) -> None:
    document: dict[str, Any] = httpx.get(f"{stack.api_url}/openapi.json", timeout=30).json()
    schemes = document["components"]["securitySchemes"]
    problem_ref = {"$ref": "#/components/schemas/Problem"}

    assert [scheme["scheme"] for scheme in schemes.values()] == ["bearer"]
    assert "Problem" in document["components"]["schemas"]
    operations = [
        (path, method, operation)
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method, operation in item.items()
    ]
    assert len(operations) >= 10
    for path, method, operation in operations:
        assert operation.get("security"), (method, path)
        responses = operation["responses"]
        for status in ("401", "403", "413", "500", "503"):
            content = responses[status]["content"]
            assert content == {PROBLEM: {"schema": problem_ref}}, (method, path, status)
    create = document["paths"]["/v1/jobs"]["post"]["responses"]
    assert {"200", "202", "400", "409", "422", "429"} <= set(create)
    assert "Retry-After" in create["429"]["headers"]
