"""A stage longer than one push request's budget runs over several deliveries from its cursor."""

from __future__ import annotations

from collections.abc import Callable

from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus
from pipelines.diagnostic.stages import first_digest, next_digest
from tests.support import JobsWatcher, body_completions, log_lines, run_document, submit_diagnostic


def test_a_long_stage_continues_from_its_cursor_and_ends_as_if_never_cut(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_STAGE_TIME_BUDGET_SECONDS="1")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(
            api, stages=2, work_units=40, unit_seconds=0.1, unit_kib=16, checkpoint_every=2
        )

    final = watcher.wait_terminal(job_id)
    history = watcher.history(job_id)
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED
    expected = first_digest(job_id)
    for unit in range(40):
        expected = next_digest(expected, job_id, "step-1", unit, 16)
    run = run_document(db, stack, job_id, "step-1")
    assert run["output"]["digest"] == expected
    assert run["deliveries"] >= 3, "the 4 s stage was split over several deliveries"
    assert run["attempts"] == 1, "continuations are not failed attempts"
    ends = [line["outcome"] for line in log_lines(stack, job_id, "stage ended")]
    assert ends.count("continued") >= 4
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1}
    progress = [job.progress for job in history]
    assert progress == sorted(progress)


def test_a_stage_that_never_checkpoints_cannot_continue_forever(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(LONGRUN_STAGE_TIME_BUDGET_SECONDS="0.5", LONGRUN_MAX_ATTEMPTS="2")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=1, work_units=40, unit_seconds=0.1)

    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "RETRIES_EXHAUSTED"
    assert "past its limit" in final.error.message
