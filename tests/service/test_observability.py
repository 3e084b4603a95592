"""What operators read: one trace per job across both services, and the lines metrics count."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus
from tests.support import (
    JobsWatcher,
    log_lines,
    processor_log_lines,
    queued_job_whose_message_was_lost,
    submit_diagnostic,
    sweep,
    wait_until,
)

TRACE = "logging.googleapis.com/trace"
SPAN_ID = "logging.googleapis.com/spanId"


def service_log_lines(stack: Stack) -> list[dict[str, Any]]:
    path = stack.log_dir / "service.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def job_lines(stack: Stack, job_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The service's and the processor's log lines about one job."""

    def about(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [line for line in lines if line.get("job_id") == job_id]

    return about(service_log_lines(stack)), about(processor_log_lines(stack))


def wait_finished(stack: Stack, job_id: str) -> dict[str, Any]:
    """The job's `job finished` line, once the processor has written it."""
    wait_until(lambda: bool(log_lines(stack, job_id, "job finished")), "the job finished line")
    (line,) = log_lines(stack, job_id, "job finished")
    return line


def trace_id_of(traceparent: str) -> str:
    return traceparent.split("-")[1]


def test_one_trace_id_covers_a_whole_job(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=3)
    other_id = submit_diagnostic(api, stages=1)
    job = jobs_watcher.wait_terminal(job_id)
    jobs_watcher.wait_terminal(other_id)
    wait_finished(stack, job_id)
    wait_finished(stack, other_id)

    service, processor = job_lines(stack, job_id)
    _, other_processor = job_lines(stack, other_id)

    assert job.status == JobStatus.SUCCEEDED
    assert [line["message"] for line in service] == ["stage published"]
    assert {line["stage"] for line in processor} == {"step-1", "step-2", "step-3"}
    traces = {line.get(TRACE) for line in service + processor}
    assert len(traces) == 1, traces
    assert job.traceparent is not None
    trace = f"projects/{stack.settings.project_id}/traces/{trace_id_of(job.traceparent)}"
    assert traces == {trace}
    assert {line.get(TRACE) for line in other_processor}.isdisjoint(traces)
    assert all(len(line[SPAN_ID]) == 16 for line in service + processor)
    assert all(line["logging.googleapis.com/trace_sampled"] for line in service + processor)
    spans = {line["stage"]: line[SPAN_ID] for line in log_lines(stack, job_id, "stage ended")}
    assert len(set(spans.values())) == 3, "each stage is a span of its own"


@pytest.mark.parametrize("header", ["traceparent", "x-cloud-trace-context"])
def test_a_trace_the_client_started_is_the_trace_the_job_carries(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, header: str
) -> None:
    trace_id = secrets.token_hex(16)
    value = {
        "traceparent": f"00-{trace_id}-{secrets.token_hex(8)}-01",
        "x-cloud-trace-context": f"{trace_id}/{secrets.randbelow(2**63) + 1};o=1",
    }[header]

    response = api.post(
        "/v1/jobs", json={"pipeline": "diagnostic", "input": {"stages": 2}}, headers={header: value}
    )
    job_id = response.json()["job_id"]
    job = jobs_watcher.wait_terminal(job_id)
    wait_finished(stack, job_id)
    service, processor = job_lines(stack, job_id)

    assert response.status_code == 202
    assert job.traceparent is not None
    assert trace_id_of(job.traceparent) == trace_id
    trace = f"projects/{stack.settings.project_id}/traces/{trace_id}"
    assert {line[TRACE] for line in service + processor} == {trace}


def test_every_stage_end_and_the_job_end_are_logged_for_metrics(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=2, fail_stage=1, fail_mode="transient", fail_attempts=1)

    final = jobs_watcher.wait_terminal(job_id)
    finished = wait_finished(stack, job_id)
    ends = log_lines(stack, job_id, "stage ended")

    assert final.status == JobStatus.SUCCEEDED
    assert [(end["stage"], end["outcome"], end["attempt"]) for end in ends] == [
        ("step-1", "retrying", 1),
        ("step-1", "succeeded", 2),
        ("step-2", "succeeded", 1),
    ]
    assert ends[0]["severity"] == "WARNING"
    assert ends[0]["error_code"] == "TRANSIENT"
    for end in ends:
        assert isinstance(end["duration_seconds"], float)
        assert end["duration_seconds"] >= 0
        assert end["queue_wait_seconds"] >= 0
    # A redelivery waits from the message's first publish: through the failed attempt too.
    assert ends[1]["queue_wait_seconds"] >= ends[0]["duration_seconds"]
    assert {k: finished[k] for k in ("pipeline", "status")} == {
        "pipeline": "diagnostic",
        "status": "succeeded",
    }


def test_a_failed_job_logs_its_end_once(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=2, fail_stage=1, fail_mode="permanent")

    jobs_watcher.wait_terminal(job_id)
    finished = wait_finished(stack, job_id)
    ends = log_lines(stack, job_id, "stage ended")

    assert finished["status"] == "failed"
    assert [(end["stage"], end["outcome"]) for end in ends] == [("step-1", "failed")]
    assert ends[0]["error_code"] == "DIAGNOSTIC_FAILURE"


def test_cancelling_a_queued_job_logs_its_end_on_the_service(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.processor.stop()
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2)
        first = api.post(f"/v1/jobs/{job_id}/cancel")
        again = api.post(f"/v1/jobs/{job_id}/cancel")

    finished = [line for line in service_log_lines(stack) if line["message"] == "job finished"]

    assert (first.status_code, again.status_code) == (200, 200)
    assert len(finished) == 1, "a second cancel of a cancelled job ends nothing"
    assert finished[0]["job_id"] == job_id
    assert finished[0]["status"] == "cancelled"
    assert finished[0]["pipeline"] == "diagnostic"
    (published,) = [
        line
        for line in service_log_lines(stack)
        if line.get("job_id") == job_id and line["message"] == "stage published"
    ]
    assert finished[0][TRACE] == published[TRACE], "the cancel is told in the job's trace"


def test_a_stage_the_sweeper_publishes_again_stays_in_the_jobs_trace(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack, watcher, job_id = queued_job_whose_message_was_lost(make_stack, db)

    republished = sweep(stack)
    final = watcher.wait_terminal(job_id)
    watcher.stop()
    wait_finished(stack, job_id)
    _, processor = job_lines(stack, job_id)

    assert republished == [{"job_id": job_id, "stage": "step-1"}]
    assert final.traceparent is not None
    trace = f"projects/{stack.settings.project_id}/traces/{trace_id_of(final.traceparent)}"
    assert {line[TRACE] for line in processor} == {trace}
    assert {line["stage"] for line in processor} == {"step-1", "step-2"}


def test_a_retried_job_runs_again_in_its_own_trace(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_MAX_ATTEMPTS="1")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(
            api, stages=2, fail_stage=2, fail_mode="transient", fail_attempts=1
        )
        failed = watcher.wait_terminal(job_id)
        retried = api.post(f"/v1/jobs/{job_id}/retry")
        final = watcher.wait_for(job_id, lambda job: job.status == JobStatus.SUCCEEDED)
    watcher.stop()
    wait_until(lambda: len(log_lines(stack, job_id, "job finished")) == 2, "the second end")
    service, processor = job_lines(stack, job_id)

    assert failed.status == JobStatus.FAILED
    assert retried.status_code == 202
    assert final.traceparent is not None
    trace = f"projects/{stack.settings.project_id}/traces/{trace_id_of(final.traceparent)}"
    assert [line["message"] for line in service] == ["stage published", "stage published"]
    assert {line[TRACE] for line in service + processor} == {trace}
    assert [line["status"] for line in log_lines(stack, job_id, "job finished")] == [
        "failed",
        "succeeded",
    ]
