"""Bad input gets a 4xx problem with a stable code, never a 500, and never a huge echo."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from deploy.local.ephemeral import Stack
from tests.support import unsigned_id_token

PROBLEM = "application/problem+json"
PAST_INT64 = 2**64


def assert_problem(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


@pytest.mark.parametrize("field", ["checkpoint_every", "fail_attempts", "fail_at_unit"])
def test_a_diagnostic_integer_past_int64_is_refused_422(api: httpx.Client, field: str) -> None:
    body = {"pipeline": "diagnostic", "input": {"stages": 1, "fail_stage": 1, field: PAST_INT64}}

    response = api.post("/v1/jobs", json=body)

    assert_problem(response, 422, "INVALID_INPUT")
    assert f"input.{field}" in {error["field"] for error in response.json()["errors"]}


def test_an_upload_size_past_int64_is_refused_422(api: httpx.Client) -> None:
    body = {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": PAST_INT64}

    response = api.post("/v1/uploads", json=body)

    assert_problem(response, 422, "VALIDATION_FAILED")


def test_an_upload_content_type_with_full_width_letters_is_refused_422(api: httpx.Client) -> None:
    full_width_mp4 = "\uff4d\uff50\uff14"  # full-width "mp4": word characters, not ASCII
    body = {"filename": "a.mp4", "content_type": f"audio/{full_width_mp4}", "size_bytes": 1000}

    response = api.post("/v1/uploads", json=body)

    assert_problem(response, 422, "VALIDATION_FAILED")
    assert response.json()["errors"][0]["field"] == "content_type"


def test_a_token_whose_firebase_claim_is_not_an_object_is_refused_401(stack: Stack) -> None:
    real = stack.auth_headers("mallory")["Authorization"].removeprefix("Bearer ")
    payload = real.split(".")[1]
    uid = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))["user_id"]
    token = unsigned_id_token(uid, firebase="password")

    response = httpx.get(
        f"{stack.api_url}/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    assert_problem(response, 401, "TOKEN_INVALID")


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"pipeline": "diagnostic", "input": {"note": "\xff\xfe"}}',
        b'{"pipeline": "diagnostic", "input": {"stages": 1' + b"0" * 5000 + b"}}",
    ],
    ids=["deep", "not-utf-8", "huge-integer"],
)
def test_malformed_json_is_refused_400_malformed_json(api: httpx.Client, body: bytes) -> None:
    response = api.post("/v1/jobs", content=body, headers={"Content-Type": "application/json"})

    assert_problem(response, 400, "MALFORMED_JSON")


@pytest.mark.parametrize("where", ["top", "input"])
def test_a_422_does_not_echo_a_huge_unknown_key(api: httpx.Client, where: str) -> None:
    key = "k" * 500_000
    body: dict[str, object] = {"pipeline": "diagnostic", "input": {"stages": 1}}
    if where == "top":
        body[key] = 1
    else:
        body["input"] = {"stages": 1, key: 1}

    response = api.post("/v1/jobs", json=body)

    assert_problem(response, 422, "VALIDATION_FAILED" if where == "top" else "INVALID_INPUT")
    assert len(response.content) < 4096


def test_a_422_lists_a_bounded_number_of_errors(api: httpx.Client) -> None:
    unknown = {f"unknown_{i}": i for i in range(5_000)}

    response = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": unknown})

    assert_problem(response, 422, "INVALID_INPUT")
    assert 0 < len(response.json()["errors"]) <= 20
    assert len(response.content) < 16_384
