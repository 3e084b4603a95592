"""The API end to end: submit over HTTP, Pub/Sub pushes to the processor, a listener watches."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from deploy.local.ephemeral import start_stack
from jobs.contract.models import JobStatus, StageStatus
from tests.support import JobsWatcher, Stack

PROBLEM = "application/problem+json"


def submit(api: httpx.Client, **diagnostic_input: Any) -> dict[str, Any]:
    response = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": diagnostic_input})
    assert response.status_code == 202, response.text
    body: dict[str, Any] = response.json()
    return body


def distinct(values: list[Any]) -> list[Any]:
    """The values with consecutive repeats folded."""
    return [v for i, v in enumerate(values) if i == 0 or values[i - 1] != v]


def test_a_job_runs_every_stage_and_a_listener_sees_it_happen(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    response = api.post(
        "/v1/jobs",
        json={
            "pipeline": "diagnostic",
            "input": {"stages": 3, "work_units": 5, "unit_seconds": 0.1},
        },
    )

    assert response.status_code == 202
    accepted = response.json()
    job_id = accepted["job_id"]
    assert accepted["status"] == "queued"
    assert response.headers["location"] == f"/v1/jobs/{job_id}"
    final = jobs_watcher.wait_terminal(job_id)
    history = jobs_watcher.history(job_id)
    assert final.status == JobStatus.SUCCEEDED
    assert distinct([job.status for job in history]) == ["queued", "running", "succeeded"]
    running_stages = distinct([job.stage for job in history if job.status == JobStatus.RUNNING])
    assert running_stages == ["step-1", "step-2", "step-3"]
    progress = [job.progress for job in history]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert any(0.0 < value < 1.0 for value in progress), "progress moved within stages"
    assert [stage.status for stage in final.stages] == [StageStatus.SUCCEEDED] * 3
    assert final.result is not None
    assert final.result["steps"] == 3
    assert final.result["units"] == 15
    assert final.finished_at is not None
    assert final.started_at is not None
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "succeeded"


def test_a_permanent_failure_fails_the_job_and_runs_no_later_stage(
    api: httpx.Client, jobs_watcher: JobsWatcher, stack: Stack
) -> None:
    job_id = submit(api, stages=3, fail_stage=2)["job_id"]

    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "DIAGNOSTIC_FAILURE"
    assert final.error.stage == "step-2"
    assert final.error.retryable is False
    assert "asked to fail" in final.error.message
    assert [s.status for s in final.stages] == ["succeeded", "failed", "pending"]
    assert all(job.stages[2].status == StageStatus.PENDING for job in jobs_watcher.history(job_id))
    body = api.get(f"/v1/jobs/{job_id}").json()
    assert body["error"]["code"] == "DIAGNOSTIC_FAILURE"
    assert "Traceback" not in str(body)


def test_the_pipelines_listing_names_each_stage_in_order(api: httpx.Client) -> None:
    response = api.get("/v1/pipelines")

    assert response.status_code == 200
    diagnostic = next(p for p in response.json() if p["name"] == "diagnostic")
    assert [s["name"] for s in diagnostic["stages"]] == ["step-1", "step-2", "step-3"]
    assert all(s["label"] and s["weight"] > 0 for s in diagnostic["stages"])
    assert "stages" in diagnostic["input_schema"]["properties"]


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"pipeline": "no-such-thing", "input": {}}, 422, "UNKNOWN_PIPELINE", "pipeline"),
        ({"input": {}}, 422, "VALIDATION_FAILED", "pipeline"),
        ({"pipeline": 7, "input": {}}, 422, "VALIDATION_FAILED", "pipeline"),
        ({"pipeline": "diagnostic", "input": "three"}, 422, "VALIDATION_FAILED", "input"),
        (
            {"pipeline": "diagnostic", "input": {"stages": "x"}},
            422,
            "INVALID_INPUT",
            "input.stages",
        ),
        ({"pipeline": "diagnostic", "input": {"stages": 0}}, 422, "INVALID_INPUT", "input.stages"),
        ({"pipeline": "diagnostic", "input": {"colour": 1}}, 422, "INVALID_INPUT", "input.colour"),
        ({"pipeline": "diagnostic", "input": {}, "x": 1}, 422, "VALIDATION_FAILED", "x"),
        ([1, 2], 422, "VALIDATION_FAILED", "body"),
    ],
)
def test_bad_job_requests_get_a_problem_naming_the_field(
    api: httpx.Client, body: Any, status: int, code: str, field: str
) -> None:
    response = api.post("/v1/jobs", json=body)

    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == code
    assert problem["status"] == status
    assert field in [error["field"] for error in problem["errors"]]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"\xff\xfe"])
def test_a_body_that_is_not_json_gets_400(api: httpx.Client, raw: bytes) -> None:
    response = api.post("/v1/jobs", content=raw, headers={"content-type": "application/json"})

    assert response.headers["content-type"] == PROBLEM
    assert response.status_code in (400, 422)
    assert response.json()["code"] in ("MALFORMED_JSON", "VALIDATION_FAILED")
    if raw:
        assert response.status_code == 400


def test_an_unknown_job_is_a_404_problem(api: httpx.Client) -> None:
    response = api.get("/v1/jobs/doesNotExist123")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "JOB_NOT_FOUND"


def test_unknown_routes_and_methods_are_problems_too(api: httpx.Client) -> None:
    assert api.get("/v2/nothing").json()["code"] == "NOT_FOUND"
    response = api.delete("/v1/jobs")
    assert response.status_code == 405
    assert response.headers["content-type"] == PROBLEM


def test_health_and_readiness(api: httpx.Client) -> None:
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/readyz").json() == {"status": "ready"}


def test_readiness_fails_when_firestore_is_unreachable(tmp_path: Any) -> None:
    import os

    from deploy.local.processes import free_port

    dead = f"127.0.0.1:{free_port()}"
    original = os.environ["FIRESTORE_EMULATOR_HOST"]
    os.environ["FIRESTORE_EMULATOR_HOST"] = dead
    try:
        broken = start_stack(tmp_path)
    finally:
        os.environ["FIRESTORE_EMULATOR_HOST"] = original
    try:
        with broken.api() as api:
            assert api.get("/healthz").status_code == 200
            response = api.get("/readyz")
        assert response.status_code == 503
        assert response.json()["code"] == "NOT_READY"
    finally:
        broken.stop()


@pytest.mark.parametrize("job_id", ["a.b", "__x__", "x" * 200, "a%2Fb", ".."])
def test_ids_that_cannot_name_a_job_are_404_not_500(api: httpx.Client, job_id: str) -> None:
    response = api.get(f"/v1/jobs/{job_id}")

    assert response.status_code == 404
    assert response.headers["content-type"] == PROBLEM
