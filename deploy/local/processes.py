"""Child processes that are stopped for sure: each runs in its own process group, so stopping it
also stops what it started (gcloud's emulators leave a Java child behind on a plain SIGTERM).
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import httpx


class StackError(Exception):
    """The local stack cannot start; the message says what to do about it."""


@dataclass
class ManagedProcess:
    """A named command started in a new session, with its output sent to a log file.

    With `own_group=False` it stays in its parent's process group instead, so that stopping the
    parent's group stops it too (the processor fleet's instances).
    """

    name: str
    args: list[str]
    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    log_path: Path | None = None
    own_group: bool = True
    process: subprocess.Popen[bytes] | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self.close_log()  # a restart appends to the same log through a new handle
        if self.log_path is not None:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.args,
            env=self.env,
            stdin=subprocess.DEVNULL,
            stdout=self._log or subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            start_new_session=self.own_group,
        )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def signal(self, signum: int) -> None:
        """Send a signal to the whole process group (or the process, if it has none of its own)."""
        if self.process is None:
            return
        with contextlib.suppress(ProcessLookupError):
            if self.own_group:
                os.killpg(self.process.pid, signum)
            elif self.process.poll() is None:  # a reaped pid may belong to someone else by now
                os.kill(self.process.pid, signum)

    def stop(self, grace_seconds: float = 10.0) -> None:
        """SIGTERM the group, wait for it, then SIGKILL whatever is left of it."""
        if self.process is None:
            return
        self.signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=grace_seconds)
        # The leader may be gone while its children (the emulator's JVM) still run.
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=5)
        self.close_log()

    def close_log(self) -> None:
        """Close the log file (after the process ended, before it is started again)."""
        if self._log is not None:
            self._log.close()
            self._log = None


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on right now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_until_ready(
    url: str, process: ManagedProcess, timeout_seconds: float, ok: tuple[int, ...] = (200,)
) -> None:
    """Poll `url` until it answers (200, or a status in `ok`); fail early and clearly if the
    process dies first."""
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not process.alive:
            where = f"; see {process.log_path}" if process.log_path else ""
            raise StackError(f"{process.name} exited while starting{where}.")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1.0).status_code in ok:
                return
        time.sleep(0.1)
    raise StackError(f"{process.name} did not become ready at {url} in {timeout_seconds:g} s.")
