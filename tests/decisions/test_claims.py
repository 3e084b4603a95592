"""The lease decisions, as plain functions of the job and run documents: no emulator needed."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.cloud.store import Decision
from jobs.contract.models import (
    ErrorInfo,
    Job,
    JobStatus,
    StageMessage,
    StageState,
    StageStatus,
    utcnow,
)
from jobs.contract.runs import Lease, Run, RunStatus
from jobs.contract.settings import Settings
from processor.leases import (
    Claim,
    ClaimOutcome,
    LeaseLost,
    decide_checkpoint,
    decide_claim,
    decide_finish,
    decide_heartbeat,
)

SETTINGS = Settings(max_attempts=3, lease_seconds=30)
OWNER = "instance-a"


def queued_job(**changes: object) -> Job:
    now = utcnow()
    job = Job(
        job_id="job1",
        owner="alice",
        pipeline="diagnostic",
        input={},
        stage="step-1",
        stages=[StageState(name="step-1", label="Step 1"), StageState(name="step-2", label="S2")],
        created_at=now,
        updated_at=now,
        expire_at=now + timedelta(days=7),
    )
    return job.model_copy(update=changes)


def claim_of(job: Job | None, run: Run, stage: str) -> Decision[Claim]:
    """A delivery of `stage`'s message, given its run as read."""
    message = StageMessage(job_id="job1", stage=stage)
    return decide_claim(job, {stage: run}, message, OWNER, SETTINGS)


def live_run(owner: str = "instance-b") -> Run:
    return Run(
        status=RunStatus.RUNNING,
        lease_owner=owner,
        lease_id="other",
        lease_expires_at=utcnow() + timedelta(seconds=30),
        attempts=1,
    )


def test_a_first_claim_takes_the_lease_and_starts_the_stage() -> None:
    decision = claim_of(queued_job(), Run(), "step-1")

    claim, run = decision.value, decision.runs["step-1"]
    assert claim.outcome == ClaimOutcome.CLAIMED
    assert claim.lease is not None
    assert claim.lease.attempt == 1
    assert claim.lease.final_attempt == 3
    assert run.held_by(claim.lease)
    assert run.is_live(utcnow())
    assert decision.job is not None
    assert decision.job.status == JobStatus.RUNNING
    assert decision.job.stages[0].status == StageStatus.RUNNING
    assert claim.job == decision.job  # the claim answers with the job as written


def test_a_live_lease_makes_a_duplicate_delivery_busy_even_after_a_cancel() -> None:
    job = queued_job(cancel_requested=True)

    decision = claim_of(job, live_run(), "step-1")

    assert decision.value.outcome == ClaimOutcome.BUSY
    assert decision.job is None
    assert not decision.runs


def test_an_expired_lease_is_taken_over_as_a_new_attempt() -> None:
    expired = live_run().model_copy(update={"lease_expires_at": utcnow() - timedelta(seconds=1)})

    decision = claim_of(queued_job(), expired, "step-1")

    assert decision.value.outcome == ClaimOutcome.CLAIMED
    assert decision.runs["step-1"].attempts == 2
    assert decision.runs["step-1"].deliveries == 1


def test_a_continuation_resumes_the_same_attempt_with_its_cursor() -> None:
    run = Run(status=RunStatus.CONTINUING, attempts=2, cursor={"unit": 7})

    claim = claim_of(queued_job(), run, "step-1").value

    assert claim.outcome == ClaimOutcome.CLAIMED
    assert claim.lease is not None
    assert claim.lease.attempt == 2
    assert claim.cursor == {"unit": 7}


def test_no_attempts_left_fails_the_job_with_the_last_cause() -> None:
    error = ErrorInfo(code="TRANSIENT", message="Unexpected OSError: disk full")
    run = Run(status=RunStatus.RETRYING, attempts=3, last_error=error)

    decision = claim_of(queued_job(), run, "step-1")

    assert decision.value.outcome == ClaimOutcome.EXHAUSTED
    assert decision.job is not None
    assert decision.job.status == JobStatus.FAILED
    assert decision.job.error is not None
    assert decision.job.error.code == "RETRIES_EXHAUSTED"
    assert "disk full" in decision.job.error.message
    assert decision.runs["step-1"].status == RunStatus.FAILED


def test_a_retried_job_gives_its_stage_a_fresh_allowance() -> None:
    run = Run(status=RunStatus.RETRYING, attempts=3, retry_base=3)

    claim = claim_of(queued_job(), run, "step-1").value

    assert claim.outcome == ClaimOutcome.CLAIMED
    assert claim.lease is not None
    assert (claim.lease.attempt, claim.lease.final_attempt) == (4, 6)


def test_a_done_stage_asks_to_republish_the_next_one_only_if_it_never_started() -> None:
    done = Run(status=RunStatus.DONE, attempts=1)
    job = queued_job()

    job.stages[0].status = StageStatus.SUCCEEDED
    due = [StageMessage(job_id="job1", stage="step-2")]
    assert claim_of(job, done, "step-1").value.republish == due
    job.stages[1].status = StageStatus.RUNNING
    assert claim_of(job, done, "step-1").value.republish == []


@pytest.mark.parametrize(
    ("job", "stage", "outcome"),
    [
        (None, "step-1", ClaimOutcome.GONE),
        (queued_job(), "step-9", ClaimOutcome.GONE),
        (queued_job(status=JobStatus.SUCCEEDED), "step-1", ClaimOutcome.TERMINAL),
    ],
)
def test_what_can_never_run_writes_nothing(
    job: Job | None, stage: str, outcome: ClaimOutcome
) -> None:
    decision = claim_of(job, Run(), stage)

    assert decision.value.outcome == outcome
    assert decision.job is None
    assert not decision.runs


def test_a_cancel_requested_before_the_claim_ends_the_job_there() -> None:
    decision = claim_of(queued_job(cancel_requested=True), Run(), "step-1")

    assert decision.value.outcome == ClaimOutcome.CANCELLED
    assert decision.job is not None
    assert decision.job.status == JobStatus.CANCELLED


def claimed() -> tuple[Job, Run, Lease]:
    decision = claim_of(queued_job(), Run(), "step-1")
    assert decision.job is not None
    assert decision.value.lease is not None
    return decision.job, decision.runs["step-1"], decision.value.lease


def test_finishing_writes_the_run_and_the_job_together() -> None:
    job, run, lease = claimed()

    decision = decide_finish(
        job, run, lease, run.succeeded({"ok": True}, utcnow()), lambda j: j.model_copy()
    )

    assert decision.runs["step-1"].status == RunStatus.DONE
    assert decision.runs["step-1"].output == {"ok": True}
    assert decision.job == decision.value.job


def test_finishing_a_lease_someone_else_took_is_refused() -> None:
    job, _run, lease = claimed()
    taken = live_run()

    with pytest.raises(LeaseLost):
        decide_finish(job, taken, lease, taken, lambda j: j)


def test_finishing_in_a_job_that_ended_meanwhile_only_gives_the_lease_up() -> None:
    job, run, lease = claimed()
    ended = job.model_copy(update={"status": JobStatus.CANCELLED})

    decision = decide_finish(ended, run, lease, run, lambda j: j)

    assert decision.value.job is None
    assert decision.job is None
    assert decision.runs["step-1"].status == RunStatus.CANCELLED
    assert decision.runs["step-1"].lease_owner is None


def test_heartbeats_and_checkpoints_need_the_lease() -> None:
    _job, run, lease = claimed()

    beat = decide_heartbeat(run, lease, 30)
    assert beat.value is True
    assert beat.runs["step-1"].lease_expires_at > run.lease_expires_at  # type: ignore[operator]
    assert decide_checkpoint(run, lease, {"unit": 3}).runs["step-1"].cursor == {"unit": 3}

    lost = live_run()
    assert decide_heartbeat(lost, lease, 30).value is False
    with pytest.raises(LeaseLost):
        decide_checkpoint(lost, lease, {"unit": 3})
