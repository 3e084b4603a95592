"""Per-user quotas: jobs started per hour and jobs active at once, kept in Firestore.

The core (`jobs.cloud.quotas`) is tested directly against the Firestore emulator, where owners are
plain strings; the API tests submit as the one default user of `stack.api()`.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.cloud.quotas import Quotas
from jobs.cloud.store import JobStore
from jobs.contract.errors import TooManyRequests
from jobs.contract.models import utcnow
from jobs.contract.settings import Settings
from tests.support import submit_diagnostic, wait_until

PROBLEM = "application/problem+json"
CONCURRENCY = "CONCURRENCY_LIMIT"
# A diagnostic job that stays running for a few seconds: long enough to hold its slot.
SLOW = {"stages": 1, "work_units": 100, "unit_seconds": 0.05}
QUICK = {"stages": 1, "work_units": 0}


@pytest.fixture
async def client(emulator_hosts: dict[str, str]) -> AsyncIterator[firestore.AsyncClient]:
    client = firestore.AsyncClient(project=os.environ["GOOGLE_CLOUD_PROJECT"])
    yield client
    client.close()


def quotas(client: firestore.AsyncClient, per_hour: int, active: int) -> Quotas:
    settings = Settings(jobs_per_hour=per_hour, active_jobs_per_user=active)
    return Quotas(JobStore(client, settings), settings)


async def refused(admission: Any) -> TooManyRequests:
    with pytest.raises(TooManyRequests) as caught:
        await admission
    return caught.value


def slots(db: firestore.Client, kind: str) -> list[dict[str, Any]]:
    query = db.collection("quota_slots").where(filter=firestore.FieldFilter("kind", "==", kind))
    return [snapshot.to_dict() or {} for snapshot in query.stream()]


# --- the core, two owners ---


async def test_one_users_hourly_quota_leaves_another_users_alone(
    client: firestore.AsyncClient,
) -> None:
    limits = quotas(client, per_hour=2, active=0)
    await limits.admit("alice", "a1")
    await limits.admit("alice", "a2")

    error = await refused(limits.admit("alice", "a3"))
    bobs = await limits.admit("bob", "b1")

    assert error.code == "HOURLY_LIMIT"
    assert 3590 <= error.details["retry_after_seconds"] <= 3600
    assert len(bobs) == 1


async def test_one_users_concurrency_quota_leaves_another_users_alone(
    client: firestore.AsyncClient,
) -> None:
    limits = quotas(client, per_hour=0, active=1)
    await client.collection("jobs").document("a1").set({"status": "running", "eta_seconds": 42.3})
    await limits.admit("alice", "a1")

    error = await refused(limits.admit("alice", "a2"))
    bobs = await limits.admit("bob", "b1")

    assert error.code == "CONCURRENCY_LIMIT"
    assert error.details["retry_after_seconds"] == 43, "the running job's estimate, rounded up"
    assert len(bobs) == 1


async def test_twenty_concurrent_admissions_take_exactly_the_free_slots(
    client: firestore.AsyncClient, db: firestore.Client
) -> None:
    limits = quotas(client, per_hour=20, active=3)

    results = await asyncio.gather(
        *(limits.admit("alice", f"job{i}") for i in range(20)), return_exceptions=True
    )

    admitted = [r for r in results if isinstance(r, list)]
    errors = [r for r in results if isinstance(r, TooManyRequests)]
    assert len(admitted) == 3
    assert {e.code for e in errors} == {"CONCURRENCY_LIMIT"}
    assert len(errors) == 17
    assert len(slots(db, "active")) == 3
    assert len(slots(db, "hour")) == 3, "the refused admissions gave their hour slots back"


@pytest.mark.parametrize(("minutes_ago", "admitted"), [(61, True), (59, False)])
async def test_an_hour_slot_comes_free_an_hour_after_its_claim(
    client: firestore.AsyncClient, minutes_ago: int, admitted: bool
) -> None:
    limits = quotas(client, per_hour=1, active=0)
    claimed_at = utcnow() - timedelta(minutes=minutes_ago)
    await client.collection("quota_slots").document("alice:hour:0").set(
        {"owner": "alice", "kind": "hour", "job_id": "old", "claimed_at": claimed_at,
         "expire_at": claimed_at + timedelta(hours=1)}
    )  # fmt: skip

    if admitted:
        assert len(await limits.admit("alice", "new")) == 1
    else:
        error = await refused(limits.admit("alice", "new"))
        assert 55 <= error.details["retry_after_seconds"] <= 60


@pytest.mark.parametrize(
    ("status", "finished_after_claim", "claimed_seconds_ago", "free"),
    [
        ("running", None, 3600, False),
        ("queued", None, 3600, False),
        ("succeeded", 1, 5, True),
        ("failed", -1, 5, False),  # a retry's claim, made after the job failed
        ("failed", -1, 120, True),  # ... by a retry that died before queueing the job
        (None, None, 120, True),  # its job vanished, or its submit died before writing it
        (None, None, 5, False),  # its submit is about to write the job
    ],
)
async def test_an_active_slot_is_free_once_its_job_has_ended_even_without_a_release(
    client: firestore.AsyncClient,
    status: str | None,
    finished_after_claim: int | None,
    claimed_seconds_ago: int,
    free: bool,
) -> None:
    limits = quotas(client, per_hour=0, active=1)
    claimed_at = utcnow() - timedelta(seconds=claimed_seconds_ago)
    await client.collection("quota_slots").document("alice:active:0").set(
        {"owner": "alice", "kind": "active", "job_id": "held", "claimed_at": claimed_at,
         "expire_at": claimed_at + timedelta(days=7)}
    )  # fmt: skip
    if status is not None:
        job: dict[str, Any] = {"status": status}
        if finished_after_claim is not None:
            job["finished_at"] = claimed_at + timedelta(seconds=finished_after_claim)
        await client.collection("jobs").document("held").set(job)

    if free:
        assert len(await limits.admit("alice", "new")) == 1
    else:
        assert (await refused(limits.admit("alice", "new"))).code == "CONCURRENCY_LIMIT"


async def test_release_frees_a_jobs_slot_but_not_the_slot_of_its_later_retry(
    client: firestore.AsyncClient, db: firestore.Client
) -> None:
    limits = quotas(client, per_hour=0, active=2)
    await limits.admit("alice", "j1")
    ended_at = utcnow()
    await limits.release("j1", ended_at)
    released = slots(db, "active")
    await limits.admit_again("alice", "j1")  # retried after it ended

    await limits.release("j1", ended_at)  # a late repeat of the first release

    assert released == []
    assert [slot["job_id"] for slot in slots(db, "active")] == ["j1"]


async def test_claims_of_a_job_never_made_are_given_back(
    client: firestore.AsyncClient, db: firestore.Client
) -> None:
    limits = quotas(client, per_hour=1, active=1)

    with pytest.raises(RuntimeError):
        async with limits.admitted("alice", "j1"):
            raise RuntimeError("the job could not be written")

    assert slots(db, "hour") == []
    assert slots(db, "active") == []
    assert len(await limits.admit("alice", "j2")) == 2


# --- through the API ---


def assert_too_many(response: httpx.Response, code: str) -> int:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code
    retry_after = int(response.headers["Retry-After"])
    assert retry_after >= 1
    return retry_after


def wait_terminal(api: httpx.Client, job_id: str) -> dict[str, Any]:
    wait_until(
        lambda: api.get(f"/v1/jobs/{job_id}").json()["status"] in ("succeeded", "failed"),
        f"job {job_id} to end",
    )
    job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
    return job


def test_the_hourly_limit_refuses_the_next_job_even_after_the_others_ended(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(LONGRUN_JOBS_PER_HOUR="2", LONGRUN_ACTIVE_JOBS_PER_USER="5")
    with stack.api() as api:
        started = [submit_diagnostic(api, **QUICK) for _ in range(2)]
        for job_id in started:
            wait_terminal(api, job_id)

        response = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": QUICK})

    retry_after = assert_too_many(response, "HOURLY_LIMIT")
    assert 3500 <= retry_after <= 3600


def test_the_concurrency_limit_refuses_while_a_job_runs_and_its_end_frees_the_slot(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_JOBS_PER_HOUR="20", LONGRUN_ACTIVE_JOBS_PER_USER="1")
    with stack.api() as api:
        running = submit_diagnostic(api, **SLOW)
        refused_while_running = api.post(
            "/v1/jobs", json={"pipeline": "diagnostic", "input": QUICK}
        )
        assert wait_terminal(api, running)["status"] == "succeeded"
        wait_until(lambda: slots(db, "active") == [], "the processor to release the slot")

        after = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": QUICK})

    assert_too_many(refused_while_running, "CONCURRENCY_LIMIT")
    assert after.status_code == 202, after.text


def test_cancelling_a_queued_job_frees_its_slot(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(LONGRUN_ACTIVE_JOBS_PER_USER="1")
    stack.processor.stop()  # nothing runs: the job stays queued
    with stack.api() as api:
        queued = submit_diagnostic(api, **QUICK)
        before = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": QUICK})
        cancelled = api.post(f"/v1/jobs/{queued}/cancel")
        after = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": QUICK})

    assert_too_many(before, "CONCURRENCY_LIMIT")
    assert cancelled.json()["status"] == "cancelled"
    assert after.status_code == 202, after.text


def test_a_retried_job_needs_a_free_slot_again(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack(LONGRUN_ACTIVE_JOBS_PER_USER="1")
    with stack.api() as api:
        failed = submit_diagnostic(api, stages=1, work_units=0, fail_stage=1)
        assert wait_terminal(api, failed)["status"] == "failed"
        running = submit_diagnostic(api, **SLOW)
        while_running = api.post(f"/v1/jobs/{failed}/retry")
        wait_terminal(api, running)

        after = api.post(f"/v1/jobs/{failed}/retry")

    assert_too_many(while_running, "CONCURRENCY_LIMIT")
    assert after.status_code == 202, after.text


@pytest.mark.parametrize(
    ("settings", "allowed", "code"),
    [
        ({"LONGRUN_JOBS_PER_HOUR": "5", "LONGRUN_ACTIVE_JOBS_PER_USER": "20"}, 5, "HOURLY_LIMIT"),
        (
            {"LONGRUN_JOBS_PER_HOUR": "20", "LONGRUN_ACTIVE_JOBS_PER_USER": "3"},
            3,
            "CONCURRENCY_LIMIT",
        ),
    ],
    ids=["hourly", "concurrency"],
)
def test_twenty_simultaneous_submits_from_one_user_admit_exactly_the_limit(
    make_stack: Callable[..., Stack],
    db: firestore.Client,
    settings: dict[str, str],
    allowed: int,
    code: str,
) -> None:
    stack = make_stack(**settings)
    responses = submit_at_once(stack, 20, {"pipeline": "diagnostic", "input": SLOW})

    accepted = [r for r in responses if r.status_code == 202]
    refused_ones = [r for r in responses if r.status_code != 202]
    assert len(accepted) == allowed
    for response in refused_ones:
        assert_too_many(response, code)
    assert len(list(db.collection("jobs").stream())) == allowed


def submit_at_once(stack: Stack, count: int, body: dict[str, Any]) -> list[httpx.Response]:
    """`count` submits from as many threads, released together."""
    gate = threading.Barrier(count)
    responses: list[httpx.Response] = []

    def submit() -> None:
        with stack.api() as api:
            api.get("/healthz")  # connected before the gate opens
            gate.wait()
            responses.append(api.post("/v1/jobs", json=body))

    threads = [threading.Thread(target=submit) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return responses


def test_the_openapi_document_declares_the_429_with_retry_after(api: httpx.Client) -> None:
    paths = api.get("/openapi.json").json()["paths"]

    for path in ("/v1/jobs", "/v1/jobs/{job_id}/retry"):
        too_many = paths[path]["post"]["responses"]["429"]
        assert "Retry-After" in too_many["headers"]
        schemas = [content.get("schema", {}) for content in too_many["content"].values()]
        assert any(schema.get("$ref", "").endswith("/Problem") for schema in schemas)
