"""`longrun dev`: clear failures, a supervisor that restarts what dies, and nothing left behind."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from deploy.local.processes import free_port
from tests.support import LONGRUN


def dev_args(ports: dict[str, int]) -> list[str]:
    return [LONGRUN, "dev", *[f"--{name}-port={port}" for name, port in ports.items()]]


def free_ports() -> dict[str, int]:
    return {
        name: free_port() for name in ("api", "processor", "firestore", "pubsub", "storage", "auth")
    }


def descendants(pid: int) -> set[int]:
    """Every process below `pid`, read from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    found: set[int] = set()
    stack = [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"


def wait_for_output(path: Path, text: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in path.read_text():
            return
        time.sleep(0.2)
    raise AssertionError(f"never saw {text!r}; output:\n{path.read_text()}")


def wait_until_healthy(url: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError(f"{url} never answered")


@pytest.fixture
def dev_stack(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], dict[str, int], Path]]:
    """`longrun dev --processors=2` on free ports, in tmp_path."""
    ports = free_ports()
    output = tmp_path / "dev.out"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            [*dev_args(ports), "--processors=2"],
            stdout=sink,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=tmp_path,
        )
    try:
        # Four emulators and four apps starting on a machine other test runs share.
        wait_for_output(output, "longrun is up", timeout=480)
        yield process, ports, output
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # it stops what it started; a SIGKILL would not
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def fleet_instances(ports: dict[str, int]) -> list[dict[str, Any]]:
    url = f"http://127.0.0.1:{ports['processor']}/_fleet"
    instances: list[dict[str, Any]] = httpx.get(url, timeout=10).json()["instances"]
    return instances


def wait_for_instances(
    ports: dict[str, int], ready: Callable[[list[dict[str, Any]]], bool], timeout: float = 120
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(httpx.HTTPError):
            instances = fleet_instances(ports)
            if ready(instances):
                return instances
        time.sleep(0.2)
    raise AssertionError("the processor processes never got there")


@pytest.mark.timeout(900)  # its fixture alone may take 8 minutes on a busy machine
def test_dev_replaces_what_dies_and_stops_every_child_on_sigterm(
    dev_stack: tuple[subprocess.Popen[bytes], dict[str, int], Path], tmp_path: Path
) -> None:
    """Two processor processes behind the processor's port; the fleet replaces one that dies,
    `longrun dev` restarts the fleet itself if it dies, and SIGTERM leaves nothing behind."""
    process, ports, output = dev_stack
    first = fleet_instances(ports)
    before = descendants(process.pid)
    [fleet] = [pid for pid in before if "deploy.local.fleet" in cmdline(pid)]

    os.kill(first[1]["pid"], signal.SIGKILL)
    replaced = wait_for_instances(ports, lambda now: now[1]["restarts"] == 1 and now[1]["serving"])
    os.kill(fleet, signal.SIGKILL)
    wait_for_output(output, "The processor exited")
    wait_for_output(output, "starting it again")
    again = wait_for_instances(
        ports,
        lambda now: (
            {i["pid"] for i in now}.isdisjoint(
                {*(i["pid"] for i in first), *(i["pid"] for i in replaced)}
            )
            and all(i["serving"] for i in now)
        ),
    )
    children = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)

    assert [(i["name"], i["serving"]) for i in first] == [
        ("processor-1", True),
        ("processor-2", True),
    ]
    assert (replaced[0]["pid"], replaced[0]["restarts"]) == (first[0]["pid"], 0)
    assert replaced[1]["pid"] != first[1]["pid"]
    assert len(again) == 2
    assert "2 processes" in output.read_text()
    logs = {path.name for path in (tmp_path / ".longrun" / "logs").iterdir()}
    assert {"processor-1.log", "processor-2.log", "processor-fleet.log"} <= logs
    assert process.returncode == 0
    everything = before | children | {i["pid"] for i in [*first, *replaced, *again]}
    assert [pid for pid in everything if alive(pid)] == []
    for port in ports.values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except OSError:
        return ""


def test_dev_refuses_a_processor_count_out_of_range() -> None:
    result = subprocess.run(
        [*dev_args(free_ports()), "--processors=0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 2
    assert "--processors" in result.stderr


def test_dev_says_what_to_install_when_gcloud_is_missing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python").symlink_to(shutil.which("python3") or "python3")
    env = {**os.environ, "PATH": str(bin_dir)}

    result = subprocess.run(
        dev_args(free_ports()), capture_output=True, text=True, env=env, timeout=60, check=False
    )

    assert result.returncode == 2
    assert "gcloud is not installed" in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_refuses_a_port_in_use_at_once(tmp_path: Path) -> None:
    ports = free_ports()
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", ports["api"]))
        taken.listen()

        result = subprocess.run(
            dev_args(ports), capture_output=True, text=True, timeout=120, check=False
        )

    assert result.returncode == 2
    assert f"Port {ports['api']}" in result.stderr
    assert "already in use" in result.stderr
