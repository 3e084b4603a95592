"""A failed stage ends the way its cause deserves: bugs are retried once, outages up to
max_attempts, outputs Firestore cannot hold never; and the job's error says what happened."""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx
import pytest
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.errors import PermanentError
from jobs.contract.models import JobStatus, StageStatus
from processor.finishing import checked_result
from tests.support import JobsWatcher, log_lines, run_document, submit_diagnostic, wait_until


def test_a_bug_in_stage_code_is_retried_once_then_fails_internal_naming_its_type(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=2, fail_stage=1, fail_mode="unexpected")

    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "INTERNAL"
    assert final.error.retryable is False
    assert final.error.stage == "step-1"
    assert "Unexpected ValueError in stage step-1" in final.error.message
    assert f"see the processor logs for job {job_id}" in final.error.message
    assert "Traceback" not in final.error.message
    assert final.stages[0].attempts == 2
    assert final.stages[1].status == StageStatus.PENDING
    wait_until(
        lambda: len(log_lines(stack, job_id, "attempt 2 failed unexpectedly")) == 1,
        "the log line of the second attempt",
    )
    logged = log_lines(stack, job_id, "attempt 2 failed unexpectedly")[0]
    assert "ValueError: diagnostic step 1 raised on attempt 2" in logged["stack_trace"]


def test_an_outage_is_retried_up_to_max_attempts_and_giving_up_names_it(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_MAX_ATTEMPTS="3")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=1, fail_stage=1, fail_mode="unavailable")

    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "RETRIES_EXHAUSTED"
    assert final.stages[0].attempts == 3
    assert "Gave up after 3 attempts" in final.error.message
    assert "A temporary failure in stage step-1: ServiceUnavailable" in final.error.message
    assert "backend unavailable, as asked" in final.error.message


def test_a_network_timeout_in_a_stage_is_retried_and_not_reported_as_its_time_limit(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=1, fail_stage=1, fail_mode="timeout", fail_attempts=2)

    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.SUCCEEDED
    assert final.stages[0].attempts == 3
    retrying = [
        job.stages[0].error
        for job in jobs_watcher.history(job_id)
        if job.stages[0].status == StageStatus.RETRYING and job.stages[0].error is not None
    ]
    assert retrying, "clients saw the stage waiting for its retry"
    assert "TimeoutError: diagnostic step 1 timed out" in retrying[0].message
    assert "past its limit" not in retrying[0].message


def test_an_output_firestore_cannot_hold_is_kept_in_cloud_storage_instead(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    job_id = submit_diagnostic(api, stages=2, work_units=1, output_kib=1100)

    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.SUCCEEDED, final.error
    assert final.stages[0].attempts == 1
    run = run_document(db, stack, job_id, "step-1")
    assert run["output"] is None
    assert run["output_uri"].endswith(f"jobs/{job_id}/runs/step-1.json.gz")


def test_a_result_firestore_cannot_hold_fails_at_once_with_its_size() -> None:
    with pytest.raises(PermanentError) as refused:
        checked_result({"padding": "x" * (1100 * 1024)})

    assert refused.value.code == "OUTPUT_TOO_LARGE"
    size = re.search(r"is ([\d,]+) bytes", refused.value.message)
    assert size is not None, refused.value.message
    assert int(size[1].replace(",", "")) > 1100 * 1024
