"""The sweeper finishes jobs whose stage message was lost."""

from __future__ import annotations

import signal
from collections.abc import Callable

import httpx
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus
from tests.support import (
    JobsWatcher,
    body_completions,
    lose_pending_messages,
    queued_job_whose_message_was_lost,
    submit_diagnostic,
    sweep,
    wait_until,
)


def test_a_queued_job_whose_message_was_lost_finishes_after_a_sweep(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack, watcher, job_id = queued_job_whose_message_was_lost(make_stack, db)

    still_queued = watcher.history(job_id)[-1].status
    republished = sweep(stack)
    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert still_queued == JobStatus.QUEUED
    assert {"job_id": job_id, "stage": "step-1"} in republished
    assert final.status == JobStatus.SUCCEEDED


def test_a_stage_whose_holder_died_and_whose_message_was_lost_finishes_after_a_sweep(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(
        LONGRUN_SWEEP_STALE_SECONDS="0", LONGRUN_LEASE_SECONDS="2", LONGRUN_HEARTBEAT_SECONDS="1"
    )
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2, work_units=40, unit_seconds=0.05)
    watcher.wait_for(job_id, lambda job: job.stages[0].progress > 0.1)
    stack.processor.signal(signal.SIGKILL)
    stack.start_processor()
    lose_pending_messages(stack)

    republished: list[dict[str, str]] = []
    wait_until(lambda: bool(republished.extend(sweep(stack)) or republished), "a re-publish")
    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert {"job_id": job_id, "stage": "step-1"} in republished
    assert final.status == JobStatus.SUCCEEDED
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1}


def test_a_sweep_leaves_healthy_work_alone(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=1, work_units=40, unit_seconds=0.05)
    jobs_watcher.wait_for(job_id, lambda job: job.stages[0].progress > 0.1)

    republished = sweep(stack)
    final = jobs_watcher.wait_terminal(job_id)

    assert republished == []
    assert final.status == JobStatus.SUCCEEDED
