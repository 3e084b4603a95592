"""Transient failures are retried with a bound; what can never succeed ends, and says why."""

from __future__ import annotations

from collections.abc import Callable

import httpx
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus, StageStatus
from tests.support import (
    JobsWatcher,
    body_completions,
    log_lines,
    publish_by_hand,
    run_document,
    submit_diagnostic,
    wait_for_claim,
    wait_until,
)


def test_a_stage_failing_twice_transiently_succeeds_on_its_third_attempt(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=2, fail_stage=1, fail_mode="transient", fail_attempts=2)

    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.SUCCEEDED
    assert [stage.attempts for stage in final.stages] == [3, 1]
    retrying = [
        job.stages[0] for job in jobs_watcher.history(job_id) if job.stages[0].status == "retrying"
    ]
    assert retrying, "clients saw the stage waiting for its retry"
    assert retrying[0].error is not None
    assert retrying[0].error.retryable is True
    assert final.stages[0].error is None
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1}


def test_a_stage_that_always_fails_transiently_exhausts_its_attempts_and_stops(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_MAX_ATTEMPTS="3")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2, fail_stage=1, fail_mode="transient")

    final = watcher.wait_terminal(job_id)
    sentinel = wait_for_claim(stack, publish_by_hand(stack, job_id, "step-1"))
    watcher.stop()

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "RETRIES_EXHAUSTED"
    assert final.error.stage == "step-1"
    assert "Gave up after 3 attempts" in final.error.message
    assert "failed on attempt 3" in final.error.message
    assert final.stages[0].attempts == 3
    assert final.stages[1].status == StageStatus.PENDING
    assert run_document(db, stack, job_id, "step-1")["attempts"] == 3
    assert sentinel == "terminal"
    assert len(log_lines(stack, job_id, "claim claimed")) == 3, "no fourth attempt"


def test_a_stage_over_its_time_limit_fails_that_attempt(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_MAX_ATTEMPTS="2")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(
            api, stages=1, work_units=50, unit_seconds=0.1, stage_timeout_seconds=0.5
        )

    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "RETRIES_EXHAUSTED"
    assert "past its limit of 0.5 s" in final.error.message
    assert final.stages[0].attempts == 2
    assert body_completions(stack, job_id) == {}


def test_a_message_pubsub_gives_up_on_fails_its_job_with_delivery_failed(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_MAX_ATTEMPTS="100", LONGRUN_MAX_DELIVERY_ATTEMPTS="5")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2, fail_stage=1, fail_mode="transient")

    final = watcher.wait_terminal(job_id, timeout=180)
    watcher.stop()

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "DELIVERY_FAILED"
    assert final.error.stage == "step-1"
    assert final.stages[0].status == StageStatus.FAILED
    assert final.stages[0].attempts >= 5
    # The line is written just after the failure commits, so it may trail the listener.
    wait_until(
        lambda: bool(log_lines(stack, job_id, "dead-lettered stage message: job failed")),
        "the dead-letter log line",
    )
