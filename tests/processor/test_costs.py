"""Cost accounting: what stages spend shows on the job as it grows, adds up once per attempt,
and a budget stops a job before it starts (estimate) or while it runs (spending)."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.budget import job_budget, usd
from jobs.contract.errors import BudgetExceeded, InvalidRequest
from jobs.contract.models import Job, JobStatus, StageStatus
from jobs.contract.settings import Settings
from pipelines.diagnostic.spec import DIAGNOSTIC, DiagnosticInput
from processor import costs
from processor.costs import COMPUTE, CostLedger
from service.submission import plan_job
from tests.support import JobsWatcher, body_completions, log_lines, run_document

PROBLEM = "application/problem+json"


def post_diagnostic(
    api: httpx.Client, max_cost_usd: Any = None, **diagnostic_input: Any
) -> httpx.Response:
    body: dict[str, Any] = {"pipeline": "diagnostic", "input": diagnostic_input}
    if max_cost_usd is not None:
        body["max_cost_usd"] = max_cost_usd
    return api.post("/v1/jobs", json=body)


def submitted(response: httpx.Response) -> str:
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def stored_jobs(db: firestore.Client, stack: Stack) -> list[dict[str, Any]]:
    return [s.to_dict() or {} for s in db.collection(stack.settings.jobs_collection).stream()]


def claimed_stages(stack: Stack, job_id: str) -> list[str]:
    return [line["stage"] for line in log_lines(stack, job_id, "claim claimed")]


def test_cost_grows_as_a_listener_watches_and_adds_up_to_the_stages(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submitted(
        post_diagnostic(api, stages=3, work_units=10, unit_seconds=0.15, cost_per_unit_usd=0.001)
    )

    final = jobs_watcher.wait_terminal(job_id)
    history = jobs_watcher.history(job_id)

    assert final.status == JobStatus.SUCCEEDED
    costs = [job.cost_usd for job in history]
    assert costs == sorted(costs), "cost never goes backwards"
    while_running = {job.cost_usd for job in history if job.status == JobStatus.RUNNING}
    assert len([c for c in while_running if 0 < c < final.cost_usd]) >= 3, "seen as it grew"
    for stage in final.stages:
        assert stage.costs["units"] == pytest.approx(0.01)
        assert stage.costs[COMPUTE] > 0
        assert stage.cost_usd == pytest.approx(sum(stage.costs.values()))
    assert final.cost_usd == pytest.approx(sum(stage.cost_usd for stage in final.stages))
    assert final.cost_usd > 0.03
    body = api.get(f"/v1/jobs/{job_id}").json()
    assert body["cost_usd"] == final.cost_usd
    assert body["stages"][0]["costs"]["units"] == pytest.approx(0.01)
    assert body["estimated_cost_usd"] == pytest.approx(0.03, rel=0.01)


def test_a_job_that_spends_past_its_budget_fails_and_no_later_stage_runs(
    api: httpx.Client, jobs_watcher: JobsWatcher, stack: Stack
) -> None:
    # The estimate assumes free units, so the job is accepted; each unit really costs $0.01.
    job_id = submitted(
        post_diagnostic(
            api,
            max_cost_usd=0.155,
            stages=3,
            work_units=10,
            cost_per_unit_usd=0.01,
            estimate_per_unit_usd=0,
        )
    )

    final = jobs_watcher.wait_terminal(job_id)

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "BUDGET_EXCEEDED"
    assert final.error.stage == "step-2"
    assert final.error.retryable is False
    assert "over its budget of $0.155" in final.error.message
    assert [s.status for s in final.stages] == ["succeeded", "failed", "pending"]
    assert final.stages[1].attempts == 1, "over budget is permanent: no retry"
    # Step 2 stopped at the unit that crossed the budget (0.10 + 0.06 > 0.155).
    assert final.stages[1].costs["units"] == pytest.approx(0.06)
    assert final.cost_usd > 0.155
    assert all(job.stages[2].status == StageStatus.PENDING for job in jobs_watcher.history(job_id))
    assert body_completions(stack, job_id) == {"step-1": 1}
    assert "step-3" not in claimed_stages(stack, job_id)
    assert api.get(f"/v1/jobs/{job_id}").json()["error"]["code"] == "BUDGET_EXCEEDED"
    retry = api.post(f"/v1/jobs/{job_id}/retry")
    assert retry.status_code == 422, "a retry would only spend more"
    assert retry.json()["code"] == "BUDGET_EXCEEDED"
    assert api.get(f"/v1/jobs/{job_id}").json()["status"] == "failed"


def test_an_estimate_over_the_budget_is_refused_and_nothing_is_created(
    api: httpx.Client, db: firestore.Client, stack: Stack
) -> None:
    response = post_diagnostic(
        api, max_cost_usd=0.1, stages=2, work_units=10, cost_per_unit_usd=0.01
    )

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    problem = response.json()
    assert problem["code"] == "BUDGET_EXCEEDED"
    assert "expected to cost $0.20, over its budget of $0.10" in problem["detail"]
    assert problem["errors"][0]["field"] == "max_cost_usd"
    assert stored_jobs(db, stack) == []
    assert api.get("/v1/jobs").json()["jobs"] == []


def test_a_retried_stage_pays_for_every_attempt_once(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    # Attempts 1 and 2 pay for 3 units each, then fail; attempt 3 pays for all 5.
    job_id = submitted(
        post_diagnostic(
            api,
            stages=2,
            work_units=5,
            cost_per_unit_usd=0.01,
            fail_stage=1,
            fail_mode="transient",
            fail_attempts=2,
            fail_at_unit=3,
        )
    )

    final = jobs_watcher.wait_terminal(job_id)
    history = jobs_watcher.history(job_id)

    assert final.status == JobStatus.SUCCEEDED
    assert [stage.attempts for stage in final.stages] == [3, 1]
    assert final.stages[0].costs["units"] == pytest.approx(0.11)
    assert final.stages[1].costs["units"] == pytest.approx(0.05)
    retrying = [job for job in history if job.stages[0].status == StageStatus.RETRYING]
    assert retrying[0].stages[0].costs["units"] == pytest.approx(0.03), "a failed attempt's cost"
    assert final.cost_usd == pytest.approx(sum(stage.cost_usd for stage in final.stages))
    costs = [job.cost_usd for job in history]
    assert costs == sorted(costs)


def test_a_continued_stage_keeps_what_earlier_deliveries_spent(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(
        LONGRUN_STAGE_TIME_BUDGET_SECONDS="1",
        LONGRUN_CPU_USD_PER_VCPU_SECOND="0.01",
        LONGRUN_PROCESSOR_VCPUS="2",
        LONGRUN_MEMORY_USD_PER_GIB_SECOND="0",
    )
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submitted(
            post_diagnostic(
                api,
                stages=1,
                work_units=20,
                unit_seconds=0.1,
                checkpoint_every=2,
                cost_per_unit_usd=0.01,
            )
        )

    final = watcher.wait_terminal(job_id)
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED
    deliveries = run_document(db, stack, job_id, "step-1")["deliveries"]
    assert deliveries >= 2
    units = final.stages[0].costs["units"]
    # Every unit is paid for once; a delivery cut between checkpoints redoes (and pays for)
    # at most the 2 units since its last one.
    assert 0.20 - 1e-9 <= units <= 0.20 + 0.02 * (deliveries - 1) + 1e-9
    # 20 units of 0.1 s at 2 vCPUs x $0.01 per vCPU-second: at least $0.04 of compute.
    assert final.stages[0].costs[COMPUTE] >= 0.04
    assert final.cost_usd == pytest.approx(units + final.stages[0].costs[COMPUTE])


def test_a_job_without_a_budget_gets_its_pipelines_default(
    api: httpx.Client, db: firestore.Client, stack: Stack
) -> None:
    default = DIAGNOSTIC.default_max_cost_usd

    accepted = post_diagnostic(api, stages=1, work_units=1)
    over_default = post_diagnostic(api, stages=3, work_units=20, cost_per_unit_usd=0.01)
    with_budget = post_diagnostic(
        api, max_cost_usd=1.0, stages=3, work_units=20, cost_per_unit_usd=0.01
    )

    assert accepted.status_code == 202
    assert accepted.json()["max_cost_usd"] == default
    assert over_default.status_code == 422
    assert over_default.json()["code"] == "BUDGET_EXCEEDED"
    assert f"over its budget of {usd(default)}." in over_default.json()["detail"]
    assert with_budget.status_code == 202
    assert with_budget.json()["max_cost_usd"] == 1.0
    budgets = sorted(job["max_cost_usd"] for job in stored_jobs(db, stack))
    assert budgets == [default, 1.0]
    listing = {p["name"]: p for p in api.get("/v1/pipelines").json()}
    assert listing["diagnostic"]["default_max_cost_usd"] == default


@pytest.mark.parametrize(
    ("max_cost_usd", "code"),
    [
        (-1, "VALIDATION_FAILED"),
        (0, "VALIDATION_FAILED"),
        ("lots", "VALIDATION_FAILED"),
        ("0.5", "VALIDATION_FAILED"),
        (True, "VALIDATION_FAILED"),
        ({"usd": 1}, "VALIDATION_FAILED"),
        (1e9, "BUDGET_OVER_CEILING"),
    ],
)
def test_a_bad_budget_is_a_problem_naming_the_field(
    api: httpx.Client, db: firestore.Client, stack: Stack, max_cost_usd: Any, code: str
) -> None:
    response = post_diagnostic(api, max_cost_usd=max_cost_usd, stages=1)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code
    assert [e["field"] for e in response.json()["errors"]] == ["max_cost_usd"]
    assert stored_jobs(db, stack) == []


# The rules on their own, without a stack.


def planned_job(max_cost_usd: float | None = None) -> Job:
    params = DiagnosticInput(stages=2)
    job = plan_job(DIAGNOSTIC, params, job_id="j1", owner="u1", settings=Settings())
    job.max_cost_usd = max_cost_usd
    return job


def test_a_budget_default_above_the_ceiling_is_held_to_the_ceiling() -> None:
    settings = Settings(max_cost_usd_ceiling=0.2)
    params = DiagnosticInput(stages=1)

    budget = job_budget(DIAGNOSTIC, params, None, settings)

    assert DIAGNOSTIC.default_max_cost_usd > 0.2
    assert budget.max_cost_usd == 0.2
    with pytest.raises(InvalidRequest):
        job_budget(DIAGNOSTIC, params, 0.3, settings)


@pytest.mark.parametrize(
    ("amount", "text"),
    [
        (0.5, "$0.50"),
        (0.155, "$0.155"),
        (0.2000005, "$0.20"),
        (0.000134, "$0.000134"),
        (2000, "$2000.00"),
    ],
)
def test_money_reads_well_in_messages(amount: float, text: str) -> None:
    assert usd(amount) == text


def test_the_compute_price_is_the_instances_vcpus_and_memory() -> None:
    settings = Settings(
        cpu_usd_per_vcpu_second=0.5,
        memory_usd_per_gib_second=0.25,
        processor_vcpus=2,
        processor_memory_gib=4,
    )

    assert settings.compute_usd_per_second == 2.0
    assert Settings().compute_usd_per_second == pytest.approx(0.000024 + 2 * 0.0000025)


def test_a_ledger_adds_to_what_the_stage_spent_before_and_stops_over_budget() -> None:
    job = planned_job(max_cost_usd=0.5)
    job.stages[0].costs = {"units": 0.2, COMPUTE: 0.01}
    job.stages[0].cost_usd = 0.21
    job.cost_usd = 0.21
    ledger = CostLedger(job, Settings(cpu_usd_per_vcpu_second=0, memory_usd_per_gib_second=0))

    ledger.add(0.1, "units")
    ledger.add(0.05, "api.calls")
    written = ledger.unsaved()
    charged = costs.charged(job, 0, written)
    ledger.saved(written)

    assert charged.stages[0].costs == {
        "units": pytest.approx(0.3),
        COMPUTE: 0.01,
        "api.calls": 0.05,
    }
    assert charged.cost_usd == pytest.approx(0.36)
    ledger.check()
    assert costs.charged(charged, 0, ledger.unsaved()).cost_usd == pytest.approx(0.36)
    ledger.add(0.2, "units")
    with pytest.raises(BudgetExceeded, match=r"spent \$0.56, over its budget of \$0.50"):
        ledger.check()


@pytest.mark.parametrize(
    ("amount", "what"),
    [(-0.01, "units"), (math.nan, "units"), (math.inf, "units"), (0.1, ""), (0.1, COMPUTE)],
)
def test_a_ledger_refuses_what_is_not_money_spent_on_something(amount: float, what: str) -> None:
    ledger = CostLedger(planned_job(), Settings())

    with pytest.raises(ValueError, match="a cost"):
        ledger.add(amount, what)
