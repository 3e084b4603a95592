"""The push endpoint's contract with Pub/Sub: what it acks, what it refuses, what it never does."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from tests.support import Stack


def envelope(data: bytes) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": {},
            "messageId": "123",
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": "projects/p/subscriptions/s",
    }


@pytest.mark.parametrize(
    "body",
    [{"hello": "world"}, {"message": {"data": "eA=="}}, [], "text", {"subscription": "s"}],
)
def test_a_body_that_is_not_a_push_envelope_gets_400(stack: Stack, body: Any) -> None:
    response = httpx.post(f"{stack.processor_url}/pubsub/push", json=body)

    assert response.status_code == 400
    assert response.json()["code"] == "NOT_A_PUSH_ENVELOPE"


@pytest.mark.parametrize(
    "payload",
    [
        b"\x00\x01 not json",
        b'{"job_id": "x"}',
        b'{"job_id": "", "stage": "step-1"}',
        b'{"job_id": "no-such-job", "stage": "step-1"}',
        b'{"job_id": "bad/id", "stage": "step-1"}',
    ],
)
def test_a_payload_that_can_never_be_processed_is_acknowledged(
    stack: Stack, payload: bytes
) -> None:
    response = httpx.post(f"{stack.processor_url}/pubsub/push", json=envelope(payload))

    assert response.status_code == 204


def test_data_that_is_not_base64_is_acknowledged(stack: Stack) -> None:
    body = envelope(b"")
    body["message"]["data"] = "***not base64***"

    response = httpx.post(f"{stack.processor_url}/pubsub/push", json=body)

    assert response.status_code == 204


def test_an_unknown_stage_of_a_real_job_is_acknowledged_and_changes_nothing(
    stack: Stack, api: httpx.Client, db: firestore.Client
) -> None:
    job_id = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": {"stages": 1}}).json()[
        "job_id"
    ]
    payload = f'{{"job_id": "{job_id}", "stage": "step-99"}}'.encode()

    response = httpx.post(f"{stack.processor_url}/pubsub/push", json=envelope(payload))

    assert response.status_code == 204
    runs = db.collection(stack.settings.jobs_collection).document(job_id).collection("runs")
    assert runs.document("step-99").get().exists is False
