"""How stage events change the job document: weighted progress that never goes backwards, and
transitions that return a new job instead of changing the one they are given."""

from __future__ import annotations

from datetime import timedelta

from jobs.contract import transitions
from jobs.contract.models import (
    MAX_LATEST_ENTRIES,
    ErrorInfo,
    Job,
    JobStatus,
    StageStatus,
    utcnow,
)
from tests.support import a_job


def make_job(*weights: float) -> Job:
    return a_job(stages={f"s{i}": weight for i, weight in enumerate(weights)})


def test_progress_is_weighted_by_stage() -> None:
    now = utcnow()
    job = transitions.stage_started(make_job(1.0, 3.0), 0, 1, now)
    job = transitions.stage_succeeded(job, 0, now, result=None)
    job = transitions.stage_started(job, 1, 1, now)
    job = transitions.stage_progressed(job, 1, 0.5, "half", now)

    assert job.progress == (1.0 + 3.0 * 0.5) / 4.0
    assert job.message == "S1: half"


def test_progress_never_goes_backwards_when_a_stage_is_retried() -> None:
    now = utcnow()
    job = transitions.stage_started(make_job(1.0, 1.0), 0, 1, now)
    high = transitions.stage_progressed(job, 0, 0.8, None, now)
    error = ErrorInfo(code="TRANSIENT", message="flaky", retryable=True, stage="s0")
    retrying = transitions.stage_retrying(high, 0, error, now)
    restarted = transitions.stage_started(retrying, 0, 2, now)

    assert restarted.progress == high.progress
    assert restarted.message == "S0 (attempt 2)"
    assert restarted.stages[0].progress == 0.0


def test_the_last_stage_succeeding_finishes_the_job_with_its_result() -> None:
    now = utcnow()
    job = transitions.stage_started(make_job(1.0), 0, 1, now)

    done = transitions.stage_succeeded(job, 0, now, result={"answer": 42})

    assert done.status == JobStatus.SUCCEEDED
    assert done.result == {"answer": 42}
    assert done.progress == 1.0
    assert done.finished_at == now


def test_a_stage_succeeding_points_the_job_at_the_next_stage() -> None:
    job = make_job(1.0, 1.0)
    now = utcnow()

    moved = transitions.stage_succeeded(job, 0, now, result=None)

    assert moved.status == JobStatus.QUEUED
    assert moved.stage == "s1"
    assert moved.message == "Queued: S1"


def test_eta_follows_the_pace_so_far() -> None:
    job = make_job(1.0)
    now = utcnow()
    job.started_at = now - timedelta(seconds=10)

    assert transitions.eta_seconds(job, 0.25, now) == 30.0
    assert transitions.eta_seconds(job, 0.0, now) is None
    assert transitions.eta_seconds(job, 1.0, now) is None


def test_cancel_marks_the_current_stage_and_leaves_done_ones() -> None:
    job = make_job(1.0, 1.0)
    now = utcnow()
    job.stages[0].status = StageStatus.SUCCEEDED

    cancelled = transitions.job_cancelled(job, 1, now)

    assert cancelled.status == JobStatus.CANCELLED
    assert [s.status for s in cancelled.stages] == ["succeeded", "cancelled"]


def test_a_transition_never_changes_the_job_it_is_given() -> None:
    job = make_job(1.0, 1.0)
    before = job.model_dump()
    now = utcnow()
    error = ErrorInfo(code="X", message="x")

    transitions.stage_started(job, 0, 1, now)
    transitions.stage_progressed(job, 0, 0.5, "half", now)
    transitions.stage_succeeded(job, 0, now, result=None, skipped="nothing to do")
    transitions.stage_failed(job, 0, error, now)
    transitions.stage_retrying(job, 0, error, now)
    transitions.job_cancelled(job, 0, now)
    transitions.cancel_requested(job)
    transitions.job_retried(transitions.stage_failed(job, 0, error, now), now)

    assert job.model_dump() == before


def test_a_job_with_a_callback_owes_a_webhook_when_it_ends() -> None:
    job = make_job(1.0).model_copy(update={"callback_url": "https://example.com/hook"})

    failed = transitions.stage_failed(job, 0, ErrorInfo(code="X", message="x"), utcnow())

    assert failed.webhook is not None
    assert failed.webhook.status == "pending"
    assert transitions.job_retried(failed, utcnow()).webhook is None


def diamond() -> Job:
    """s0, then s1 and s2 side by side, then s3 after both."""
    job = make_job(1.0, 1.0, 3.0, 1.0)
    job.stages[1].needs = ["s0"]
    job.stages[2].needs = ["s0"]
    job.stages[3].needs = ["s1", "s2"]
    return job


def test_a_stage_whose_needs_are_done_is_ready_once_and_the_join_waits_for_all() -> None:
    now = utcnow()
    job = transitions.stage_started(diamond(), 0, 1, now)
    after_s0 = transitions.stage_succeeded(job, 0, now, result=None)
    assert transitions.newly_ready(job, after_s0) == ["s1", "s2"]

    both = transitions.stage_started(transitions.stage_started(after_s0, 1, 1, now), 2, 1, now)
    after_s1 = transitions.stage_succeeded(both, 1, now, result=None)
    assert transitions.newly_ready(both, after_s1) == []
    after_s2 = transitions.stage_succeeded(after_s1, 2, now, result=None)
    assert transitions.newly_ready(after_s1, after_s2) == ["s3"]
    assert transitions.upstream(after_s2, 3) == ["s0", "s1", "s2"]


def test_parallel_stages_headline_the_one_with_the_most_work_left() -> None:
    now = utcnow()
    job = transitions.stage_succeeded(diamond(), 0, now, result=None)
    job = transitions.stage_started(transitions.stage_started(job, 1, 1, now), 2, 1, now)
    job = transitions.stage_progressed(job, 2, 0.5, "half", now)

    assert job.stage == "s2"  # weight 3 at half way still has more left than s1 at the start
    assert job.message == "S2: half (and 1 more)"


def test_items_earn_their_stage_progress_and_the_last_one_completes_the_set() -> None:
    now = utcnow()
    job = transitions.stage_started(make_job(1.0), 0, 1, now)
    job = transitions.stage_fanned_out(job, 0, 4, now)
    job = transitions.item_progressed(job, 0, 1, 0.5, now)
    assert job.stages[0].progress == transitions.ITEMS_SHARE * 0.5 / 4
    for item in range(3):
        job = transitions.item_settled(job, 0, item, now, failed=False)
    items = job.stages[0].items
    assert items is not None
    assert (items.done, items.complete, items.running) == (3, False, {})
    job = transitions.item_settled(job, 0, 3, now, failed=True)
    assert job.stages[0].items is not None
    assert job.stages[0].items.complete
    assert job.stages[0].message == "3/4 parts, 1 failed"
    assert job.stages[0].progress == transitions.ITEMS_SHARE


def test_a_retried_job_keeps_the_items_that_succeeded() -> None:
    now = utcnow()
    job = transitions.stage_fanned_out(
        transitions.stage_started(make_job(1.0), 0, 1, now), 0, 4, now
    )
    job = transitions.item_settled(job, 0, 0, now, failed=False)
    error = ErrorInfo(code="X", message="broke", stage="s0")
    failed = transitions.stage_failed(job, 0, error, now)

    retried = transitions.job_retried(failed, now)

    items = retried.stages[0].items
    assert items is not None
    assert (items.total, items.done, items.failed) == (4, 1, 0)
    assert retried.status == JobStatus.QUEUED
    assert retried.stage == "s0"


def test_the_latest_entries_a_stage_shows_keep_its_newest_few_and_leave_the_job_given() -> None:
    job = make_job(1.0, 1.0)
    first = transitions.latest_shown(job, "s0", [{"text": "one"}, {"text": "two"}])
    many = [{"text": str(n)} for n in range(MAX_LATEST_ENTRIES)]

    later = transitions.latest_shown(first, "s0", many)
    other = transitions.latest_shown(later, "s1", [{"text": "other"}])

    assert job.latest == {}
    assert first.latest == {"s0": [{"text": "one"}, {"text": "two"}]}
    assert later.latest["s0"] == many  # the newest, and no more than the limit
    assert other.latest == {"s0": many, "s1": [{"text": "other"}]}
    assert transitions.latest_shown(other, "s1", []) is other
