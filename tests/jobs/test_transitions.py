"""How stage events change the job document: weighted progress that never goes backwards."""

from __future__ import annotations

from datetime import timedelta

from jobs import transitions
from jobs.models import ErrorInfo, Job, JobStatus, StageState, StageStatus, utcnow


def make_job(*weights: float) -> Job:
    now = utcnow()
    return Job(
        job_id="j",
        owner="o",
        pipeline="diagnostic",
        input={},
        stages=[StageState(name=f"s{i}", label=f"S{i}", weight=w) for i, w in enumerate(weights)],
        created_at=now,
        updated_at=now,
        expire_at=now + timedelta(days=7),
    )


def test_progress_is_weighted_by_stage() -> None:
    job = make_job(1.0, 3.0)
    now = utcnow()
    transitions.stage_started(job, 0, 1, now)
    transitions.stage_succeeded(job, 0, now, result=None)
    fields = transitions.stage_progressed(job, 1, 0.5, "half", now)

    assert fields["progress"] == (1.0 + 3.0 * 0.5) / 4.0
    assert fields["message"] == "S1: half"


def test_progress_never_goes_backwards_when_a_stage_is_retried() -> None:
    job = make_job(1.0, 1.0)
    now = utcnow()
    transitions.stage_started(job, 0, 1, now)
    high = transitions.stage_progressed(job, 0, 0.8, None, now)["progress"]
    error = ErrorInfo(code="TRANSIENT", message="flaky", retryable=True, stage="s0")
    transitions.stage_retrying(job, 0, error, now)
    restarted = transitions.stage_started(job, 0, 2, now)

    assert restarted["progress"] == high
    assert restarted["message"] == "S0 (attempt 2)"
    assert job.stages[0].progress == 0.0


def test_the_last_stage_succeeding_finishes_the_job_with_its_result() -> None:
    job = make_job(1.0)
    now = utcnow()
    transitions.stage_started(job, 0, 1, now)

    fields = transitions.stage_succeeded(job, 0, now, result={"answer": 42})

    assert fields["status"] == JobStatus.SUCCEEDED
    assert fields["result"] == {"answer": 42}
    assert fields["progress"] == 1.0
    assert fields["finished_at"] == now


def test_a_stage_succeeding_points_the_job_at_the_next_stage() -> None:
    job = make_job(1.0, 1.0)
    now = utcnow()

    fields = transitions.stage_succeeded(job, 0, now, result=None)

    assert "status" not in fields
    assert fields["stage"] == "s1"
    assert fields["message"] == "Queued: S1"


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

    fields = transitions.job_cancelled(job, 1, now)

    assert fields["status"] == JobStatus.CANCELLED
    assert [s["status"] for s in fields["stages"]] == ["succeeded", "cancelled"]
