"""`longrun submit --watch` follows a job live and exits by its outcome."""

from __future__ import annotations

import os
import subprocess

from tests.support import LONGRUN, Stack


def run_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "120"}
    return subprocess.run(
        [LONGRUN, *args, "--api", stack.api_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


def test_submit_and_watch_until_the_job_succeeds(stack: Stack) -> None:
    result = run_cli(stack, "submit", "diagnostic", "--input", '{"stages": 3}', "--watch")

    assert result.returncode == 0, result.stderr
    assert "Job succeeded" in result.stdout
    assert "Diagnostic step 3 of 3" in result.stdout
    assert "spent $" in result.stdout, "what the job cost shows"


def test_watch_exits_non_zero_when_the_job_fails(stack: Stack) -> None:
    result = run_cli(
        stack, "submit", "diagnostic", "--input", '{"stages": 2, "fail_stage": 1}', "--watch"
    )

    assert result.returncode == 1
    assert "Job failed" in result.stdout
    assert "DIAGNOSTIC_FAILURE" in result.stdout


def test_bad_input_is_refused_with_the_field_named(stack: Stack) -> None:
    not_json = run_cli(stack, "submit", "diagnostic", "--input", "{stages")
    invalid = run_cli(stack, "submit", "diagnostic", "--input", '{"stages": -1}')

    assert not_json.returncode == 2
    assert "not valid JSON" in not_json.stderr
    assert invalid.returncode == 1
    assert "input.stages" in invalid.stderr


def test_status_prints_the_job(stack: Stack) -> None:
    submitted = run_cli(stack, "submit", "diagnostic", "--input", '{"stages": 1}')
    job_id = submitted.stdout.split("Submitted job ")[1].split()[0]

    result = run_cli(stack, "status", job_id)

    assert result.returncode == 0
    assert f'"job_id": "{job_id}"' in result.stdout
