"""Idempotency-Key on POST /v1/jobs and POST /v1/uploads: a repeat gets what the first made."""

from __future__ import annotations

import os
import threading
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from google.cloud import firestore
from pydantic import BaseModel

from deploy.local.ephemeral import Stack
from jobs.contract.errors import InvalidRequest
from jobs.contract.settings import Settings
from service.idempotency import IdempotencyKeys, Replay, Reservation, body_hash
from tests.support import wait_until

PROBLEM = "application/problem+json"
JOB = {"pipeline": "diagnostic", "input": {"stages": 1, "work_units": 0}}
# Runs for about 3 s: long enough to hold its concurrency slot.
SLOW_JOB = {
    "pipeline": "diagnostic",
    "input": {"stages": 1, "work_units": 60, "unit_seconds": 0.05},
}
UPLOAD = {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 1000}


def keyed(key: str) -> dict[str, str]:
    return {"Idempotency-Key": key}


def stored(db: firestore.Client, collection: str) -> list[dict[str, Any]]:
    return [snapshot.to_dict() or {} for snapshot in db.collection(collection).stream()]


def test_a_repeated_job_request_returns_the_first_job(
    api: httpx.Client, db: firestore.Client
) -> None:
    first = api.post("/v1/jobs", json=JOB, headers=keyed("order-1"))
    # The same body, spelt differently: key order does not make it another request.
    repeat = api.post(
        "/v1/jobs",
        json={"input": {"work_units": 0, "stages": 1}, "pipeline": "diagnostic"},
        headers=keyed("order-1"),
    )

    assert first.status_code == 202
    assert repeat.status_code == 200
    assert repeat.json()["job_id"] == first.json()["job_id"]
    assert repeat.headers["Location"] == first.headers["Location"]
    assert repeat.json().keys() == first.json().keys()
    assert [job["job_id"] for job in stored(db, "jobs")] == [first.json()["job_id"]]


def test_the_same_key_with_another_body_is_refused(api: httpx.Client, db: firestore.Client) -> None:
    first = api.post("/v1/jobs", json=JOB, headers=keyed("order-2"))
    other = {"pipeline": "diagnostic", "input": {"stages": 2}}

    reused = api.post("/v1/jobs", json=other, headers=keyed("order-2"))

    assert first.status_code == 202
    assert reused.status_code == 422
    assert reused.headers["content-type"] == PROBLEM
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(stored(db, "jobs")) == 1


def test_ten_simultaneous_requests_with_one_key_make_one_job(
    stack: Stack, db: firestore.Client
) -> None:
    gate = threading.Barrier(10)
    responses: list[httpx.Response] = []

    def submit() -> None:
        with stack.api() as api:
            api.get("/healthz")  # connected before the gate opens
            gate.wait()
            responses.append(api.post("/v1/jobs", json=JOB, headers=keyed("burst")))

    threads = [threading.Thread(target=submit) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(r.status_code for r in responses) == [200] * 9 + [202]
    assert len({r.json()["job_id"] for r in responses}) == 1
    assert len(stored(db, "jobs")) == 1
    assert len(stored(db, "idempotency_keys")) == 1


def test_a_request_that_failed_does_not_use_up_its_key(api: httpx.Client) -> None:
    wrong = api.post("/v1/jobs", json={"pipeline": "no-such-pipeline"}, headers=keyed("order-3"))

    right = api.post("/v1/jobs", json=JOB, headers=keyed("order-3"))

    assert wrong.status_code == 422
    assert wrong.json()["code"] == "UNKNOWN_PIPELINE"
    assert right.status_code == 202, right.text


@pytest.mark.parametrize("key", ["", "x" * 256, "two words"])
def test_a_malformed_key_is_refused(api: httpx.Client, db: firestore.Client, key: str) -> None:
    response = api.post("/v1/jobs", json=JOB, headers=keyed(key))

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "VALIDATION_FAILED"
    assert stored(db, "jobs") == []


def test_a_repeat_costs_no_quota_and_a_refused_request_can_be_repeated(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(LONGRUN_JOBS_PER_HOUR="5", LONGRUN_ACTIVE_JOBS_PER_USER="1")
    statuses: list[int] = []

    with stack.api() as api:

        def submit_next() -> bool:
            statuses.append(api.post("/v1/jobs", json=JOB, headers=keyed("next")).status_code)
            return statuses[-1] != 429

        first = api.post("/v1/jobs", json=SLOW_JOB, headers=keyed("slow"))
        repeats = [api.post("/v1/jobs", json=SLOW_JOB, headers=keyed("slow")) for _ in range(5)]
        # Refused while the first job runs, then admitted once it has ended; every refusal
        # gives the key and the hour slot back (more refusals than the hourly quota of 5).
        wait_until(submit_next, "the first job to end and free its slot")
        again = api.post("/v1/jobs", json=JOB, headers=keyed("next"))

    assert first.status_code == 202
    assert {r.status_code for r in repeats} == {200}, "a repeat would not fit the active quota"
    assert statuses[0] == 429
    assert statuses[-1] == 202
    assert len(statuses) > 5
    assert again.status_code == 200


def test_a_repeated_upload_request_returns_the_first_ticket(
    api: httpx.Client, db: firestore.Client
) -> None:
    first = api.post("/v1/uploads", json=UPLOAD, headers=keyed("upload-1"))
    repeat = api.post("/v1/uploads", json=UPLOAD, headers=keyed("upload-1"))
    reused = api.post("/v1/uploads", json={**UPLOAD, "size_bytes": 2000}, headers=keyed("upload-1"))

    assert first.status_code == 201
    assert repeat.status_code == 200
    assert repeat.json() == first.json()
    assert reused.status_code == 422
    assert reused.json()["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert [upload["upload_id"] for upload in stored(db, "uploads")] == [first.json()["upload_id"]]


def test_one_key_means_different_things_on_jobs_and_uploads(
    api: httpx.Client, db: firestore.Client
) -> None:
    job = api.post("/v1/jobs", json=JOB, headers=keyed("shared"))
    upload = api.post("/v1/uploads", json=UPLOAD, headers=keyed("shared"))

    assert job.status_code == 202
    assert upload.status_code == 201


def test_the_openapi_document_declares_the_key_and_the_repeat(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    for path in ("/v1/jobs", "/v1/uploads"):
        post = paths[path]["post"]
        names = [p["name"] for p in post["parameters"] if p["in"] == "header"]
        assert "Idempotency-Key" in names
        assert {"200", "409", "422"} <= post["responses"].keys()


# --- the core, two owners ---


class Body(BaseModel):
    value: int


@pytest.fixture
async def keys(emulator_hosts: dict[str, str]) -> AsyncIterator[IdempotencyKeys]:
    client = firestore.AsyncClient(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    yield IdempotencyKeys(client, Settings())
    client.close()


async def test_one_key_of_two_users_is_two_keys(keys: IdempotencyKeys) -> None:
    async def nothing_made(_: str, __: Any) -> None:
        return None

    body = body_hash(Body(value=1))

    alice = await keys.reserve("jobs", "alice", "k", body, "job-a", nothing_made)
    bob = await keys.reserve("jobs", "bob", "k", body, "job-b", nothing_made)

    assert isinstance(alice, Reservation)
    assert isinstance(bob, Reservation)
    assert (alice.resource_id, bob.resource_id) == ("job-a", "job-b")


async def test_a_repeat_finds_what_the_first_request_made(keys: IdempotencyKeys) -> None:
    async def made(resource_id: str, _: Any) -> str:
        return f"the resource {resource_id}"

    body = body_hash(Body(value=1))
    first = await keys.reserve("jobs", "alice", "k", body, "job-1", made)

    repeat = await keys.reserve("jobs", "alice", "k", body, "job-2", made)
    with pytest.raises(InvalidRequest) as reused:
        await keys.reserve("jobs", "alice", "k", body_hash(Body(value=2)), "job-3", made)

    assert isinstance(first, Reservation)
    assert repeat == Replay("the resource job-1")
    assert reused.value.code == "IDEMPOTENCY_KEY_REUSED"
