"""Cancel and retry, as a user does them through the API."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus, StageStatus
from tests.support import (
    JobsWatcher,
    body_completions,
    log_lines,
    publish_by_hand,
    submit_diagnostic,
    wait_for_claim,
    wait_until,
)

PROBLEM = "application/problem+json"


def test_cancelling_a_queued_job_cancels_it_at_once_and_nothing_runs(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack()
    stack.processor.stop()
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2)

        response = api.post(f"/v1/jobs/{job_id}/cancel")
        stack.start_processor()
        wait_until(lambda: bool(log_lines(stack, job_id, "claim terminal")), "the stage delivery")
        after = api.get(f"/v1/jobs/{job_id}").json()

    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert after["status"] == "cancelled"
    assert [s["status"] for s in after["stages"]] == ["cancelled", "pending"]
    assert log_lines(stack, job_id, "claim claimed") == []


def test_cancelling_a_running_job_stops_its_stage_and_runs_no_later_one(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=2, work_units=200, unit_seconds=0.05)
    jobs_watcher.wait_for(job_id, lambda job: job.stages[0].progress > 0.05)

    response = api.post(f"/v1/jobs/{job_id}/cancel")
    final = jobs_watcher.wait_terminal(job_id)

    assert response.status_code == 202
    assert response.json()["cancel_requested"] is True
    assert final.status == JobStatus.CANCELLED
    assert final.stages[0].status == StageStatus.CANCELLED
    assert final.stages[0].progress < 1.0, "the stage stopped before its end"
    assert final.stages[1].status == StageStatus.PENDING
    wait_until(
        lambda: any(
            line["outcome"] == "cancelled" for line in log_lines(stack, job_id, "stage ended")
        ),
        "the stage to stop",
    )
    assert body_completions(stack, job_id) == {}


def test_cancelling_twice_is_harmless_and_a_finished_job_cannot_be_cancelled(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    cancelled = submit_diagnostic(api, stages=1, work_units=200, unit_seconds=0.05)
    finished = submit_diagnostic(api, stages=1)
    jobs_watcher.wait_terminal(finished)

    first = api.post(f"/v1/jobs/{cancelled}/cancel")
    jobs_watcher.wait_terminal(cancelled)
    second = api.post(f"/v1/jobs/{cancelled}/cancel")
    refused = api.post(f"/v1/jobs/{finished}/cancel")
    unknown = api.post("/v1/jobs/noSuchJob/cancel")

    assert first.status_code in (200, 202)
    assert second.status_code == 200
    assert second.json()["status"] == "cancelled"
    assert refused.status_code == 409
    assert refused.headers["content-type"] == PROBLEM
    assert refused.json()["code"] == "JOB_FINISHED"
    assert api.get(f"/v1/jobs/{finished}").json()["status"] == "succeeded"
    assert unknown.status_code == 404


def test_retry_resumes_a_failed_job_at_the_failed_stage_and_keeps_earlier_outputs(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    job_id = submit_diagnostic(api, stages=3, fail_stage=2, fail_attempts=1)
    failed = jobs_watcher.wait_terminal(job_id)

    response = api.post(f"/v1/jobs/{job_id}/retry")
    final = jobs_watcher.wait_for(job_id, lambda job: job.status == JobStatus.SUCCEEDED)

    assert failed.status == JobStatus.FAILED
    assert response.status_code == 202
    assert response.json()["status"] == "queued"
    assert response.json()["stage"] == "step-2"
    assert response.json()["error"] is None
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1, "step-3": 1}
    assert [stage.attempts for stage in final.stages] == [1, 2, 1]
    assert final.result is not None
    assert final.result["steps"] == 3
    progress = [job.progress for job in jobs_watcher.history(job_id)]
    assert progress == sorted(progress), "progress never went backwards, retry included"


def test_only_a_failed_job_can_be_retried(api: httpx.Client, jobs_watcher: JobsWatcher) -> None:
    job_id = submit_diagnostic(api, stages=1)
    jobs_watcher.wait_terminal(job_id)

    response = api.post(f"/v1/jobs/{job_id}/retry")

    assert response.status_code == 409
    assert response.json()["code"] == "JOB_NOT_FAILED"
    assert api.post("/v1/jobs/noSuchJob/retry").status_code == 404


def test_a_duplicate_message_after_a_cancel_request_leaves_the_end_to_the_running_stage(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    # Units of 2 s: the stage notices the cancel at its next unit, well after the duplicate.
    job_id = submit_diagnostic(api, stages=2, work_units=30, unit_seconds=2)
    jobs_watcher.wait_for(job_id, lambda job: job.stages[0].progress > 0)

    requested = api.post(f"/v1/jobs/{job_id}/cancel")
    duplicate = publish_by_hand(stack, job_id, "step-1")
    decision = wait_for_claim(stack, duplicate)
    final = jobs_watcher.wait_terminal(job_id)

    assert requested.status_code == 202
    assert decision == "busy", "the stage's holder is alive: the duplicate waits"
    assert final.status == JobStatus.CANCELLED
    ends = [job for job in jobs_watcher.history(job_id) if job.status.terminal]
    assert len({job.finished_at for job in ends}) == 1, "the job ended once"
    wait_until(lambda: bool(log_lines(stack, job_id, "job finished")), "the job's end line")
    assert len(log_lines(stack, job_id, "job finished")) == 1


def test_a_dead_letter_older_than_a_retry_does_not_fail_the_retried_job(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=2, fail_stage=2, fail_attempts=1)
    jobs_watcher.wait_terminal(job_id)
    before_retry = datetime.now(UTC) - timedelta(seconds=1)
    data = base64.b64encode(json.dumps({"job_id": job_id, "stage": "step-2"}).encode()).decode()
    stale = {
        "message": {"data": data, "messageId": "stale-1", "publishTime": before_retry.isoformat()},
        "subscription": "projects/p/subscriptions/dead-letter",
    }

    retried = api.post(f"/v1/jobs/{job_id}/retry")
    dead_letter = httpx.post(f"{stack.processor_url}/pubsub/dead-letter", json=stale, timeout=30)
    version = retried.json()["version"]
    final = jobs_watcher.wait_for(job_id, lambda job: job.status.terminal and job.version > version)

    assert retried.status_code == 202
    assert dead_letter.status_code == 204
    assert final.status == JobStatus.SUCCEEDED, final.error
    assert log_lines(stack, job_id, "dead-lettered stage message: job failed") == []
