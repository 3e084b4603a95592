"""The CLI a person reaches for: list, watch, cancel and retry jobs, with `--json` for scripts and
exit codes that tell outcomes apart (0 succeeded, 1 failed, 2 usage, 3 cancelled)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.cli.commands import Cli

# Two minutes: still running when the next command starts, however busy the machine.
SLOW = {"stages": 1, "work_units": 120, "unit_seconds": 1.0, "unit_kib": 0}


def submitted(cli: Cli, *args: str) -> dict[str, Any]:
    result = cli("submit", "diagnostic", *args, "--json")
    assert result.returncode == 0, result.stderr
    job: dict[str, Any] = json.loads(result.stdout)
    return job


def json_lines(stdout: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stdout.splitlines()]


@pytest.mark.timeout(900)  # nine commands, each a process signing in, on a shared machine
def test_jobs_lists_newest_first_filters_by_status_and_pages(cli: Cli) -> None:
    good = cli("submit", "diagnostic", "--input", '{"stages": 1}', "--wait", "--json")
    bad = cli("submit", "diagnostic", "--input", '{"stages": 1, "fail_stage": 1}', "--wait")
    bad_id = bad.stdout.split("Submitted job ")[1].split()[0]
    good_id = json_lines(good.stdout)[-1]["job_id"]

    listed = json.loads(cli("jobs", "--json").stdout)
    failed = json.loads(cli("jobs", "--status", "failed", "--json").stdout)
    first = json.loads(cli("jobs", "--limit", "1", "--json").stdout)
    rest = json.loads(cli("jobs", "--cursor", first["next_cursor"], "--json").stdout)
    table = cli("jobs")
    nothing = cli("jobs", "--status", "cancelled")
    wrong = cli("jobs", "--status", "finished")

    assert (good.returncode, bad.returncode) == (0, 1), "exit codes: succeeded 0, failed 1"
    assert json_lines(good.stdout)[-1]["status"] == "succeeded"
    assert [job["job_id"] for job in listed["jobs"]] == [bad_id, good_id]
    assert listed["next_cursor"] is None
    assert [(job["job_id"], job["status"]) for job in failed["jobs"]] == [(bad_id, "failed")]
    assert [job["job_id"] for job in first["jobs"]] == [bad_id]
    assert [job["job_id"] for job in rest["jobs"]] == [good_id]
    assert table.returncode == 0, table.stderr
    rows = {line.split()[0]: line for line in table.stdout.splitlines()[1:]}
    assert "succeeded" in rows[good_id]
    assert "failed" in rows[bad_id]
    assert "DIAGNOSTIC_FAILURE" in rows[bad_id]
    assert "No cancelled jobs." in nothing.stdout
    assert wrong.returncode == 2


@pytest.mark.timeout(600)
def test_cancel_a_running_job_and_watching_it_exits_3(cli: Cli) -> None:
    job = submitted(cli, "--input", json.dumps(SLOW))

    cancelled = cli("cancel", job["job_id"], "--wait")
    watched = cli("watch", job["job_id"], "--json")
    again = cli("cancel", job["job_id"], "--json")

    assert cancelled.returncode == 3, cancelled.stderr
    assert "Job cancelled" in cancelled.stdout
    assert watched.returncode == 3
    assert json_lines(watched.stdout)[-1]["status"] == "cancelled"
    assert again.returncode == 0, "cancelling a cancelled job is harmless"
    assert json.loads(again.stdout)["status"] == "cancelled"


def test_retry_runs_a_failed_job_again_to_success_and_a_finished_job_cannot_be_cancelled(
    cli: Cli,
) -> None:
    once = '{"stages": 2, "fail_stage": 2, "fail_attempts": 1}'
    failed = cli("submit", "diagnostic", "--input", once, "--wait", "--json")
    job_id = json_lines(failed.stdout)[-1]["job_id"]

    retried = cli("retry", job_id, "--wait")
    late_cancel = cli("cancel", job_id)
    retry_again = cli("retry", job_id, "--json")

    assert failed.returncode == 1
    assert retried.returncode == 0, retried.stderr
    assert "queued again" in retried.stdout
    assert "Job succeeded" in retried.stdout
    assert late_cancel.returncode == 1
    assert "409 JOB_FINISHED" in late_cancel.stderr
    assert retry_again.returncode == 1
    assert retry_again.stdout == "", "nothing but JSON on stdout, and no JSON when refused"
    assert "JOB_NOT_FAILED" in retry_again.stderr


def test_following_with_json_prints_each_change_until_the_end(cli: Cli) -> None:
    slowish = '{"stages": 3, "work_units": 40, "unit_seconds": 0.1}'

    followed = cli("submit", "diagnostic", "--input", slowish, "--wait", "--json")

    assert followed.returncode == 0, followed.stderr
    states = json_lines(followed.stdout)
    assert len(states) >= 2, "changes showed as they happened"
    assert states[-1]["status"] == "succeeded"
    versions = [state["version"] for state in states]
    assert versions == sorted(set(versions)), "each line a newer state"
    progress = [state["progress"] for state in states]
    assert progress == sorted(progress)
