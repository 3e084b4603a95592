"""Stages that run at the same time, and stages fanned out over items: on the real emulators,
through the `diagnostic` pipeline's knobs (`parallel`, `items`, `fail_item`, `item_failure`)."""

from __future__ import annotations

import time
from collections.abc import Callable

from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import Job, JobStatus, StageStatus
from jobs.contract.transitions import ITEMS_SHARE
from tests.support import (
    JobsWatcher,
    body_completions,
    log_lines,
    publish_by_hand,
    run_document,
    submit_diagnostic,
)


def _running(job: Job) -> set[str]:
    return {stage.name for stage in job.stages if stage.status == StageStatus.RUNNING}


def _reduces(stack: Stack, job_id: str) -> int:
    return len(log_lines(stack, job_id, "diagnostic reduce completed"))


def test_independent_stages_run_at_the_same_time_and_the_join_runs_once(
    stack: Stack, jobs_watcher: JobsWatcher
) -> None:
    with stack.api() as api:
        job_id = submit_diagnostic(
            api, stages=4, parallel=True, work_units=20, unit_seconds=0.1, unit_kib=1
        )
    final = jobs_watcher.wait_terminal(job_id)
    history = jobs_watcher.history(job_id)

    assert final.status == JobStatus.SUCCEEDED, final.error
    assert any(_running(job) >= {"step-2", "step-3"} for job in history), "never side by side"
    # The join waited for both branches: it never ran while either was still going.
    for job in history:
        if "step-4" in _running(job):
            assert job.stages[1].status.done
            assert job.stages[2].status.done
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1, "step-3": 1, "step-4": 1}
    progress = [job.progress for job in history]
    assert progress == sorted(progress), "progress went backwards"
    assert final.result == {"steps": 4, "units": 80, "digest": final.result["digest"]}


def test_a_fanned_out_stage_runs_every_item_once_and_reduces_once(
    stack: Stack, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2, items=6, work_units=10, unit_seconds=0.05)
    final = jobs_watcher.wait_terminal(job_id)
    history = jobs_watcher.history(job_id)

    assert final.status == JobStatus.SUCCEEDED, final.error
    expected = {f"step-{s}~{n}": 1 for s in (1, 2) for n in range(6)}
    assert body_completions(stack, job_id) == expected
    assert _reduces(stack, job_id) == 2
    items = final.stages[0].items
    assert items is not None
    assert (items.total, items.done, items.failed, items.running) == (6, 6, 0, {})
    # Clients saw the items move: done counts only ever rose, progress never went back.
    done = [job.stages[0].items.done for job in history if job.stages[0].items]
    assert done == sorted(done)
    assert len(set(done)) > 2
    progress = [job.stages[0].progress for job in history if job.stages[0].items]
    assert progress == sorted(progress)
    assert max(p for p in progress if p < 1.0) <= ITEMS_SHARE + 1e-9
    assert final.result == {"steps": 2, "units": 120, "digest": final.result["digest"]}
    assert run_document(db, stack, job_id, "step-1~5")["output"]["units"] == 10


def test_duplicates_of_every_item_and_reduce_message_commit_each_result_once(
    stack: Stack, jobs_watcher: JobsWatcher
) -> None:
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=1, items=4, work_units=30, unit_seconds=0.05)
    jobs_watcher.wait_for(job_id, lambda job: job.stages[0].items is not None)
    for item in range(4):  # each item and the stage (whose next run is the reduce) twice more
        publish_by_hand(stack, job_id, "step-1", item)
        publish_by_hand(stack, job_id, "step-1", item)
    publish_by_hand(stack, job_id, "step-1")
    final = jobs_watcher.wait_terminal(job_id)
    for item in range(4):  # and once more after the job is done
        publish_by_hand(stack, job_id, "step-1", item)
    publish_by_hand(stack, job_id, "step-1")
    time.sleep(2)

    assert final.status == JobStatus.SUCCEEDED
    assert body_completions(stack, job_id) == {f"step-1~{n}": 1 for n in range(4)}
    assert _reduces(stack, job_id) == 1
    assert final.stages[0].items is not None
    assert final.stages[0].items.done == 4


def test_a_failed_item_fails_the_stage_and_a_retry_runs_only_the_failed_item_again(
    stack: Stack, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    with stack.api() as api:
        job_id = submit_diagnostic(
            api, stages=1, items=4, work_units=5, fail_stage=1, fail_item=2, fail_attempts=1
        )
        failed = jobs_watcher.wait_terminal(job_id)
        assert failed.status == JobStatus.FAILED
        assert failed.error is not None
        assert failed.error.code == "DIAGNOSTIC_FAILURE"
        committed = [
            n
            for n in range(4)
            if run_document(db, stack, job_id, f"step-1~{n}").get("status") == "done"
        ]

        retried = api.post(f"/v1/jobs/{job_id}/retry")
        assert retried.status_code == 202, retried.text
        final = jobs_watcher.wait_for(
            job_id, lambda job: job.status.terminal and job.version > failed.version
        )

    assert final.status == JobStatus.SUCCEEDED, final.error
    completions = body_completions(stack, job_id)
    assert 2 not in committed
    assert completions["step-1~2"] == 1
    for item in committed:  # what had succeeded did not run again
        assert completions[f"step-1~{item}"] == 1
    assert _reduces(stack, job_id) == 1
    assert final.stages[0].items is not None
    assert final.stages[0].items.done == 4


def test_under_the_gap_policy_a_failed_item_leaves_a_gap_and_the_rest_succeed(
    stack: Stack, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    with stack.api() as api:
        job_id = submit_diagnostic(
            api, stages=1, items=5, work_units=5, fail_stage=1, fail_item=3, item_failure="gap"
        )
    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.SUCCEEDED, final.error
    items = final.stages[0].items
    assert items is not None
    assert (items.done, items.failed) == (4, 1)
    output = run_document(db, stack, job_id, "step-1")["output"]
    assert output["gaps"] == [3]
    assert output["units"] == 20
    assert run_document(db, stack, job_id, "step-1~3")["status"] == "failed"


def test_cancel_during_a_fan_out_stops_every_item(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack()
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=1, items=4, work_units=600, unit_seconds=0.05)
        watcher.wait_for(
            job_id, lambda job: bool(job.stages[0].items and job.stages[0].items.running)
        )
        cancelled_at = time.monotonic()
        response = api.post(f"/v1/jobs/{job_id}/cancel")
        assert response.status_code in (200, 202), response.text
        final = watcher.wait_terminal(job_id)
    stopped_after = time.monotonic() - cancelled_at
    watcher.stop()

    assert final.status == JobStatus.CANCELLED
    assert final.stages[0].status == StageStatus.CANCELLED
    assert body_completions(stack, job_id) == {}, "an item ran on to its end"
    # Every item's lease was released or lapses: none is still held by a running body.
    time.sleep(2)
    for item in range(4):
        run = run_document(db, stack, job_id, f"step-1~{item}")
        assert run.get("status") != "done"
    assert stopped_after < 30  # 600 units at 0.05 s would take 30 s


def test_a_big_output_is_kept_in_cloud_storage_and_read_back(
    stack: Stack, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2, work_units=2, output_kib=300)
    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.SUCCEEDED, final.error
    run = run_document(db, stack, job_id, "step-1")
    assert run["output"] is None
    assert run["output_uri"].endswith(f"/jobs/{job_id}/runs/step-1.json.gz")
    assert final.result is not None
    assert final.result["steps"] == 2


def test_a_processor_killed_mid_fan_out_loses_nothing_and_counts_nothing_twice(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(processors=2, LONGRUN_LEASE_SECONDS="3", LONGRUN_HEARTBEAT_SECONDS="1")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(
            api, stages=4, parallel=True, items=4, work_units=20, unit_seconds=0.1, unit_kib=16
        )
    # The emulator pushes two messages at a time: one to each process, while the two middle
    # steps' items run side by side.
    watcher.wait_for(
        job_id,
        lambda job: any(s.items and 1 <= s.items.done < s.items.total for s in job.stages[1:3]),
    )

    stack.kill_processor(0)
    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED, final.error
    for stage in final.stages:  # every item counted once: not lost, not twice
        assert stage.items is not None
        assert (stage.items.done, stage.items.failed) == (4, 0)
    assert final.result is not None
    assert final.result["units"] == 4 * 4 * 20
    assert _reduces(stack, job_id) == 4  # once per step, the join's included
    assert stack.processor_instances()[0]["restarts"] == 1
    completions = body_completions(stack, job_id)
    assert set(completions) == {f"step-{s}~{n}" for s in range(1, 5) for n in range(4)}
