"""`make dev` and `make test` say at once what the machine lacks, one line per tool with the
command that installs it, before they install or start anything."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
# What the README lists, by the command each provides (Chromium is found at its usual path).
TOOLS = ("python3", "make", "node", "npm", "gcloud", "java", "shellcheck")


def machine(bin_dir: Path, without: tuple[str, ...] = ()) -> dict[str, str]:
    """An environment whose PATH holds this machine's tools except `without`."""
    bin_dir.mkdir(exist_ok=True)
    for tool in TOOLS:
        # This interpreter itself for python3: a version manager's shim needs a PATH of its own.
        found = os.path.realpath(sys.executable) if tool == "python3" else shutil.which(tool)
        if tool not in without and found and not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(found)
    return {**os.environ, "PATH": str(bin_dir)}


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def missing_lines(stderr: str) -> list[str]:
    return [line.strip() for line in stderr.splitlines() if line.startswith("  ")]


def check(purpose: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run([sys.executable, "-m", "deploy.local.prerequisites", purpose], env)


def test_make_test_names_each_missing_tool_with_its_install_command_and_installs_nothing(
    tmp_path: Path,
) -> None:
    env = machine(tmp_path / "bin", without=("java", "shellcheck"))
    venv = tmp_path / "venv"

    result = run(["make", "test", f"VENV={venv}"], env)

    assert result.returncode != 0
    assert missing_lines(result.stderr) == [
        "java (Java 17 or newer, for the emulators) is not installed: "
        "sudo apt-get install openjdk-17-jre-headless",
        "shellcheck (for the deploy scripts' test) is not installed: "
        "sudo apt-get install shellcheck",
    ]
    assert "Traceback" not in result.stderr
    assert not venv.exists(), "nothing was installed"


def test_make_dev_does_not_ask_for_what_only_the_tests_need(tmp_path: Path) -> None:
    env = machine(tmp_path / "bin", without=("java", "shellcheck"))

    result = run(["make", "dev", f"VENV={tmp_path / 'venv'}"], env)

    assert result.returncode != 0
    assert [line.split(" ")[0] for line in missing_lines(result.stderr)] == ["java"]


def test_an_emulator_missing_from_the_cloud_cli_is_named_with_its_package(tmp_path: Path) -> None:
    sdk = tmp_path / "google-cloud-sdk"
    (sdk / "bin").mkdir(parents=True)
    (sdk / "lib" / "surface" / "beta").mkdir(parents=True)
    (sdk / "platform" / "cloud-firestore-emulator").mkdir(parents=True)
    (sdk / "bin" / "gcloud").write_text("#!/bin/sh\n")
    (sdk / "bin" / "gcloud").chmod(0o755)
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "gcloud").symlink_to(sdk / "bin" / "gcloud")  # as /usr/bin/gcloud is

    result = check("dev", machine(tmp_path / "bin"))

    assert result.returncode == 1
    assert missing_lines(result.stderr) == [
        f"The Pub/Sub emulator is not installed (in {sdk}): "
        "sudo apt-get install google-cloud-cli-pubsub-emulator"
    ]


def test_a_node_older_than_20_is_refused_with_its_version(tmp_path: Path) -> None:
    (tmp_path / "bin").mkdir()
    old_node = tmp_path / "bin" / "node"
    old_node.write_text("#!/bin/sh\necho v18.19.0\n")
    old_node.chmod(0o755)

    result = check("install", machine(tmp_path / "bin"))

    assert result.returncode == 1
    assert [line.split(":")[0] for line in missing_lines(result.stderr)] == [
        "Node.js 20 or newer is needed (node is version 18)"
    ]


def test_a_java_older_than_17_is_refused_from_its_release_file(tmp_path: Path) -> None:
    jdk = tmp_path / "jdk-11"
    (jdk / "bin").mkdir(parents=True)
    (jdk / "bin" / "java").write_text("#!/bin/sh\necho 'java was not meant to run' >&2\nexit 1\n")
    (jdk / "bin" / "java").chmod(0o755)
    (jdk / "release").write_text('IMPLEMENTOR="Eclipse Adoptium"\nJAVA_VERSION="11.0.22"\n')
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "java").symlink_to(jdk / "bin" / "java")  # as /usr/bin/java is

    result = check("dev", machine(tmp_path / "bin"))

    assert result.returncode == 1
    assert missing_lines(result.stderr) == [
        "Java 17 or newer is needed (java is version 11): "
        "sudo apt-get install openjdk-17-jre-headless"
    ]


@pytest.mark.skipif(
    any(shutil.which(tool) is None for tool in TOOLS), reason="this machine lacks a prerequisite"
)
def test_a_machine_with_everything_passes_silently(tmp_path: Path) -> None:
    result = check("test", machine(tmp_path / "bin"))

    assert (result.returncode, result.stderr) == (0, "")
