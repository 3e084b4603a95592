"""A processor killed mid-stage, or stopped by SIGTERM, loses no job and runs no stage twice."""

from __future__ import annotations

import signal
from collections.abc import Callable

from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus, StageStatus
from pipelines.diagnostic.stages import first_digest, next_digest
from tests.support import (
    JobsWatcher,
    body_completions,
    run_document,
    submit_diagnostic,
)


def uninterrupted_digest(job_id: str, stage: str, units: int, unit_kib: int) -> str:
    digest = first_digest(job_id)
    for unit in range(units):
        digest = next_digest(digest, job_id, stage, unit, unit_kib)
    return digest


def test_a_processor_killed_mid_stage_loses_nothing_and_repeats_nothing(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_LEASE_SECONDS="3", LONGRUN_HEARTBEAT_SECONDS="1")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=3, work_units=20, unit_seconds=0.1, unit_kib=64)
    watcher.wait_for(job_id, lambda job: job.stage == "step-2" and job.stages[1].progress > 0.2)

    stack.processor.signal(signal.SIGKILL)
    assert stack.processor.process is not None
    stack.processor.process.wait(timeout=30)
    stack.start_processor()
    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1, "step-3": 1}
    assert [stage.attempts for stage in final.stages] == [1, 2, 1]
    for stage in ("step-1", "step-2", "step-3"):
        output = run_document(db, stack, job_id, stage)["output"]
        assert output["digest"] == uninterrupted_digest(job_id, stage, 20, 64)


def test_a_stage_killed_mid_run_runs_again_once_its_default_lease_ends(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack()  # the shipped lease and heartbeat, and the shipped retry policy
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=1, work_units=40, unit_seconds=0.1)
    watcher.wait_for(job_id, lambda job: job.stages[0].progress > 0.2)

    stack.processor.signal(signal.SIGKILL)
    assert stack.processor.process is not None
    stack.processor.process.wait(timeout=30)
    stack.start_processor()
    rerun = watcher.wait_for(job_id, lambda job: job.stages[0].attempts == 2)
    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert rerun.stages[0].status == StageStatus.RUNNING
    assert final.status == JobStatus.SUCCEEDED
    assert body_completions(stack, job_id) == {"step-1": 1}


def test_sigterm_releases_the_lease_so_the_next_instance_starts_at_once(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_LEASE_SECONDS="600")
    stack.processor.stop()
    stack.start_processor(grace_seconds=1)
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=1, work_units=100, unit_seconds=0.1)
    watcher.wait_for(job_id, lambda job: job.stages[0].progress > 0.05)

    stack.processor.signal(signal.SIGTERM)
    assert stack.processor.process is not None
    stack.processor.process.wait(timeout=30)
    run = run_document(db, stack, job_id, "step-1")
    interrupted = watcher.wait_for(job_id, lambda job: job.stages[0].status == "retrying")
    stack.start_processor()
    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert run["lease_owner"] is None, "the stopping instance gave its lease back"
    assert run["status"] == "retrying"
    assert interrupted.stages[0].error is not None
    assert interrupted.stages[0].error.code == "INTERRUPTED"
    assert final.status == JobStatus.SUCCEEDED
    assert final.stages[0].status == StageStatus.SUCCEEDED
    assert final.stages[0].attempts == 2
    assert body_completions(stack, job_id) == {"step-1": 1}
