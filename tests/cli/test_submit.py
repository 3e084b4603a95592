"""`longrun submit --watch` follows a job live and exits by its outcome."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from pathlib import Path

import httpx

from deploy.local.processes import free_port
from jobs.cloud.identity import IdentityToolkit
from tests.cli.commands import Cli, run_cli
from tests.support import Stack


def test_submit_and_watch_until_the_job_succeeds(cli: Cli) -> None:
    result = cli("submit", "diagnostic", "--input", '{"stages": 3}', "--watch")

    assert result.returncode == 0, result.stderr
    assert "Job succeeded" in result.stdout
    assert "Diagnostic step 3 of 3" in result.stdout
    assert "spent $" in result.stdout, "what the job cost shows"


def test_watch_exits_non_zero_when_the_job_fails(cli: Cli) -> None:
    result = cli("submit", "diagnostic", "--input", '{"stages": 2, "fail_stage": 1}', "--watch")

    assert result.returncode == 1
    assert "Job failed" in result.stdout
    assert "DIAGNOSTIC_FAILURE" in result.stdout


def test_bad_input_is_refused_with_the_field_named(cli: Cli) -> None:
    not_json = cli("submit", "diagnostic", "--input", "{stages")
    invalid = cli("submit", "diagnostic", "--input", '{"stages": -1}')

    assert not_json.returncode == 2
    assert "not valid JSON" in not_json.stderr
    assert invalid.returncode == 1
    assert "input.stages" in invalid.stderr


def test_the_cli_remembers_its_user_and_another_user_cannot_see_the_job(
    stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    submitted = cli("submit", "diagnostic", "--input", '{"stages": 1}')
    job_id = submitted.stdout.split("Submitted job ")[1].split()[0]

    result = cli("status", job_id)
    someone_else = run_cli(stack, "status", job_id, config_home=tmp_path / "other")

    assert result.returncode == 0, result.stderr
    assert f'"job_id": "{job_id}"' in result.stdout
    assert (tmp_path / "config" / "longrun" / "credentials.json").stat().st_mode & 0o077 == 0
    assert someone_else.returncode == 1
    assert "404 JOB_NOT_FOUND" in someone_else.stderr


def test_watch_follows_the_job_through_the_api_when_firestore_cannot_be_listened_to(
    stack: Stack, tmp_path: Path
) -> None:
    nowhere = f"127.0.0.1:{free_port()}"  # no Firestore there: the listener never hears back

    result = run_cli(
        stack,
        *("submit", "diagnostic", "--input", '{"stages": 2}', "--watch"),
        config_home=tmp_path,
        FIRESTORE_EMULATOR_HOST=nowhere,
    )

    assert result.returncode == 0, result.stderr
    assert "Job succeeded" in result.stdout


def test_a_remembered_user_the_auth_emulator_forgot_is_replaced_by_a_new_one(
    stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    # As after `make dev` is started again: the CLI's saved token is fresh, its user is gone.
    auth = os.environ["FIREBASE_AUTH_EMULATOR_HOST"]
    ghost = IdentityToolkit("any", emulator_host=auth).sign_up()
    httpx.post(
        f"http://{auth}/identitytoolkit.googleapis.com/v1/accounts:delete?key=any",
        json={"idToken": ghost.id_token},
        timeout=30,
    ).raise_for_status()
    saved = tmp_path / "config" / "longrun" / "credentials.json"
    saved.parent.mkdir(parents=True)
    saved.write_text(json.dumps({stack.api_url: asdict(ghost)}))

    result = cli("submit", "diagnostic", "--input", '{"stages": 1}', "--json")

    assert result.returncode == 0, result.stderr
    assert json.loads(saved.read_text())[stack.api_url]["uid"] != ghost.uid
