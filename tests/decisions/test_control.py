"""Cancel, retry, dead letters and webhook records as plain decisions on the documents."""

from __future__ import annotations

from datetime import timedelta

import pytest

from jobs.contract.errors import Conflict, NotFound
from jobs.contract.models import (
    ErrorInfo,
    JobStatus,
    StageMessage,
    StageStatus,
    WebhookDelivery,
    WebhookStatus,
    utcnow,
)
from jobs.contract.runs import Run, RunStatus
from processor.deadletter import decide_undelivered
from processor.webhooks import Attempt, decide_record
from service.control import CancelOutcome, decide_cancel, decide_retry
from tests.decisions.test_claims import live_run, queued_job

ERROR = ErrorInfo(code="X", message="broke", stage="step-1")


def test_another_users_job_is_as_absent_as_a_missing_one() -> None:
    for job in (None, queued_job(owner="bob")):
        with pytest.raises(NotFound):
            decide_cancel(job, {}, "job1", "alice")
        with pytest.raises(NotFound):
            decide_retry(job, {}, "job1", "alice")


def test_cancel_with_nothing_running_ends_the_job_at_once() -> None:
    decision = decide_cancel(queued_job(), {"step-1": Run()}, "job1", "alice")

    assert decision.value.outcome == CancelOutcome.CANCELLED
    assert decision.value.ended_now
    assert decision.job is not None
    assert decision.job.status == JobStatus.CANCELLED
    assert decision.job.cancel_requested


def test_cancel_with_a_live_lease_asks_the_stage_to_stop() -> None:
    decision = decide_cancel(queued_job(), {"step-1": live_run()}, "job1", "alice")

    assert decision.value.outcome == CancelOutcome.REQUESTED
    assert decision.job is not None
    assert decision.job.status == JobStatus.QUEUED
    assert decision.job.cancel_requested


def test_cancelling_twice_ends_the_job_once() -> None:
    cancelled = queued_job(status=JobStatus.CANCELLED)

    decision = decide_cancel(cancelled, {}, "job1", "alice")

    assert decision.value.outcome == CancelOutcome.CANCELLED
    assert not decision.value.ended_now
    assert decision.job is None


def test_a_finished_job_cannot_be_cancelled_nor_a_running_one_retried() -> None:
    with pytest.raises(Conflict):
        decide_cancel(queued_job(status=JobStatus.SUCCEEDED), {}, "job1", "alice")
    with pytest.raises(Conflict):
        decide_retry(queued_job(status=JobStatus.RUNNING), {}, "job1", "alice")


def test_retry_requeues_what_did_not_succeed_with_fresh_attempts() -> None:
    job = queued_job(status=JobStatus.FAILED, error=ERROR)
    job.stages[0].status = StageStatus.SUCCEEDED
    job.stages[1].status = StageStatus.FAILED
    run = Run(status=RunStatus.FAILED, attempts=5)

    decision = decide_retry(job, {"step-2": run}, "job1", "alice")

    assert decision.job is not None
    assert decision.job.status == JobStatus.QUEUED
    assert decision.job.stage == "step-2"
    assert decision.job.stages[0].status == StageStatus.SUCCEEDED
    retried = decision.runs["step-2"]
    assert retried.attempts_left(5) == 5
    assert retried.retried_at is not None


def test_a_dead_letter_fails_a_job_still_waiting_on_its_stage() -> None:
    message = StageMessage(job_id="job1", stage="step-1")

    decision = decide_undelivered(queued_job(), Run(), message, utcnow())

    assert decision.job is not None
    assert decision.job.status == JobStatus.FAILED
    assert decision.job.error is not None
    assert decision.job.error.code == "DELIVERY_FAILED"


def test_a_dead_letter_older_than_a_retry_or_for_a_live_stage_is_ignored() -> None:
    message = StageMessage(job_id="job1", stage="step-1")
    now = utcnow()
    retried = Run(status=RunStatus.RETRYING, retried_at=now)

    assert decide_undelivered(queued_job(), retried, message, now - timedelta(1)).job is None
    assert decide_undelivered(queued_job(), live_run(), message, now).job is None


def test_a_webhook_attempt_is_recorded_only_while_the_webhook_is_due() -> None:
    ended = queued_job(
        status=JobStatus.SUCCEEDED,
        callback_url="https://example.com/hook",
        webhook=WebhookDelivery(),
    )

    decision = decide_record(ended, Attempt(status_code=200), max_attempts=3)

    assert decision.value is not None
    assert decision.value.status == WebhookStatus.DELIVERED
    assert decision.job is not None
    assert decision.job.webhook == decision.value
    assert decide_record(decision.job, Attempt(status_code=200), 3).job is None
