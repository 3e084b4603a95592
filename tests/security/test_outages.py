"""A paused Firestore or Pub/Sub answers API requests with a quick 503, not a hang.

Each test runs a stack on emulators of its own, so pausing them (SIGSTOP) leaves the shared
session emulators alone. How quick is asserted through the HTTP client's own timeout: the old
behaviour (16-90 s for Firestore, 20 s for Pub/Sub) runs into it, a deadline of a few seconds
does not.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local import emulators
from deploy.local.emulators import Emulator
from deploy.local.ephemeral import WAIT_SECONDS, Stack
from deploy.local.processes import free_port
from tests.support import submit_diagnostic, sweep

DIAGNOSTIC = {"pipeline": "diagnostic", "input": {"stages": 1}}


@pytest.fixture
def own_backends(log_dir: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Emulator]]:
    """Firestore and Pub/Sub emulators for this test alone, named in the environment while it
    runs (so the stacks it makes use them); Storage and Auth stay the session's."""
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    where = log_dir / f"own-{free_port()}"
    started = {
        "firestore": emulators.start_firestore(free_port(), project, where),
        "pubsub": emulators.start_pubsub(free_port(), project, where),
    }
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", started["firestore"].host_port)
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", started["pubsub"].host_port)
    yield started
    for emulator in started.values():
        emulator.process.signal(signal.SIGCONT)
        emulator.stop()


@contextmanager
def paused(emulator: Emulator) -> Iterator[None]:
    """The emulator's whole process group stopped, as a hung backend looks to its clients."""
    emulator.process.signal(signal.SIGSTOP)
    try:
        yield
    finally:
        emulator.process.signal(signal.SIGCONT)


def assert_backend_unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "BACKEND_UNAVAILABLE"
    assert int(response.headers["Retry-After"]) >= 1


def wait_for_status(api: httpx.Client, job_id: str, status: str) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        job: dict[str, Any] = api.get(f"/v1/jobs/{job_id}").json()
        if job.get("status") == status:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_id} never became {status}")


def first_job(api: httpx.Client) -> str:
    """Submit once the stack answers: a newly started emulator may be slow to its first reply."""
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        response = api.post("/v1/jobs", json=DIAGNOSTIC)
        if response.status_code == 202 or time.monotonic() > deadline:
            assert response.status_code == 202, response.text
            job_id: str = response.json()["job_id"]
            return job_id


def test_a_paused_firestore_gets_a_quick_503_on_every_route_and_the_stack_recovers(
    own_backends: dict[str, Emulator], make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(
        LONGRUN_BACKEND_TIMEOUT_SECONDS="5",
        LONGRUN_JOBS_PER_HOUR="20",
        LONGRUN_ACTIVE_JOBS_PER_USER="3",
    )
    with stack.api() as api:  # its timeout (30 s) is what the old hang ran into
        job_id = first_job(api)
        wait_for_status(api, job_id, "succeeded")

        with paused(own_backends["firestore"]):
            answers = [
                api.post("/v1/jobs", json=DIAGNOSTIC),
                api.post("/v1/jobs", json=DIAGNOSTIC, headers={"Idempotency-Key": "k-1"}),
                api.get(f"/v1/jobs/{job_id}"),
                api.get("/v1/jobs"),
                api.post(f"/v1/jobs/{job_id}/cancel"),
                api.post(f"/v1/jobs/{job_id}/retry"),
                api.post(
                    "/v1/uploads",
                    json={"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 10},
                ),
            ]
        after = api.post("/v1/jobs", json=DIAGNOSTIC, headers={"Idempotency-Key": "k-1"})

        for response in answers:
            assert_backend_unavailable(response)
        assert after.status_code == 202, after.text
        assert wait_for_status(api, after.json()["job_id"], "succeeded")
        assert api.get("/v1/jobs").status_code == 200


def test_a_submit_while_pubsub_is_paused_is_accepted_and_the_sweeper_publishes_it(
    own_backends: dict[str, Emulator], make_stack: Callable[..., Stack]
) -> None:
    stack = make_stack(LONGRUN_BACKEND_TIMEOUT_SECONDS="5", LONGRUN_SWEEP_STALE_SECONDS="0")
    # The old wait on a paused Pub/Sub was 20 s: this client gives up before that.
    with httpx.Client(base_url=stack.api_url, timeout=15, headers=stack.auth_headers()) as api:
        wait_for_status(api, first_job(api), "succeeded")
        with paused(own_backends["pubsub"]):
            job_id = submit_diagnostic(api, stages=1)
            still = api.get(f"/v1/jobs/{job_id}").json()

        # The publish that timed out may yet reach Pub/Sub once it resumes; if not, this does.
        sweep(stack)
        final = wait_for_status(api, job_id, "succeeded")

    assert still["status"] == "queued"
    assert final["stages"][0]["status"] == "succeeded"
