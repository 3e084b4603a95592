"""`longrun dev`: clear failures, a supervisor that restarts what dies, and nothing left behind."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

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
    ports = free_ports()
    output = tmp_path / "dev.out"
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
    with output.open("wb") as sink:
        process = subprocess.Popen(
            dev_args(ports), stdout=sink, stderr=subprocess.STDOUT, env=env, cwd=tmp_path
        )
    try:
        wait_for_output(output, "longrun is up")
        yield process, ports, output
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_dev_restarts_a_dead_app_and_stops_every_child_on_sigterm(
    dev_stack: tuple[subprocess.Popen[bytes], dict[str, int], Path],
) -> None:
    process, ports, output = dev_stack
    processor = f"http://127.0.0.1:{ports['processor']}"
    before = descendants(process.pid)
    listener = next(
        pid for pid in before if "processor.app" in Path(f"/proc/{pid}/cmdline").read_text()
    )

    os.kill(listener, signal.SIGKILL)
    wait_for_output(output, "The processor exited")
    wait_for_output(output, "starting it again")
    wait_until_healthy(f"{processor}/healthz")
    children = descendants(process.pid)
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=60)

    assert process.returncode == 0
    assert [pid for pid in children | before if alive(pid)] == []
    for port in ports.values():
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"


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
