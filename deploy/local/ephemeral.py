"""A throwaway stack for tests and benchmarks: the service and the processor as real uvicorn
processes on free ports, with Pub/Sub topics of their own, on emulators that are already running
(named by FIRESTORE_, PUBSUB_, STORAGE_ and FIREBASE_AUTH_EMULATOR_HOST).

The processor is one process, or with `processors=N` (N > 1) a fleet of N processes behind the
one push endpoint (deploy/local/fleet.py), as N Cloud Run instances would be. A fleet replaces a
process that dies, as Cloud Run replaces a crashed instance; a lone processor stays dead until
`start_processor()`, as it always has.
"""

from __future__ import annotations

import functools
import os
import signal
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from deploy.local.apps import app_process, processor_log_paths, processor_process
from deploy.local.fleet import STATUS_PATH
from deploy.local.processes import ManagedProcess, free_port, wait_until_ready
from deploy.local.stack import stack_env
from deploy.local.topology import Topology, ensure_topology
from jobs.cloud.identity import IdentityToolkit
from jobs.cloud.storage import Storage
from jobs.contract.settings import Settings

# An upper bound on waits for a stack and its jobs, never a speed target: a CI machine of 2 cores
# late in a 50-minute suite has taken more than 60 s to finish a 5-second job.
WAIT_SECONDS = 120.0
DEFAULT_USER = "alice"


@functools.cache
def user_token(auth_emulator: str, user: str) -> str:
    """An ID token from the Auth emulator for the email user `<user>@example.com`."""
    toolkit = IdentityToolkit(api_key="emulator", emulator_host=auth_emulator)
    return toolkit.user(f"{user}@example.com", "longrun-password").id_token


@dataclass
class Stack:
    """A service and a processor (one process, or a fleet of `processors`) as real uvicorn
    processes, with topics of their own."""

    settings: Settings
    env: dict[str, str]
    log_dir: Path
    service: ManagedProcess
    # The lone processor, or the fleet's front end (its process group holds every instance).
    processor: ManagedProcess
    api_url: str
    processor_url: str
    processor_port: int
    processors: int = 1

    def auth_headers(self, user: str = DEFAULT_USER) -> dict[str, str]:
        """The `Authorization` header of a signed-in user (created on first use)."""
        token = user_token(self.env["FIREBASE_AUTH_EMULATOR_HOST"], user)
        return {"Authorization": f"Bearer {token}"}

    def api(self, user: str = DEFAULT_USER) -> httpx.Client:
        """A client of the API, signed in as `user`."""
        return httpx.Client(base_url=self.api_url, timeout=30, headers=self.auth_headers(user))

    def start_processor(self, grace_seconds: float = 8) -> None:
        """(Re)start the processor on its port, e.g. after a test killed it: a fleet is started
        afresh, and answers once every one of its processes serves."""
        self.processor.stop()  # reaps a dead one and closes its log
        self.processor = processor_process(
            self.processor_port, self.env, self.log_dir, self.processors, grace_seconds
        )
        self.processor.start()
        wait_until_ready(f"{self.processor_url}/healthz", self.processor, WAIT_SECONDS)

    @property
    def processor_logs(self) -> list[Path]:
        """The log of each processor process, in instance order (`processor.log` when alone)."""
        return processor_log_paths(self.log_dir, self.processors)

    def processor_instances(self) -> list[dict[str, Any]]:
        """Each processor process as the fleet sees it: `name`, `pid`, `port`, `alive`,
        `serving`, `in_flight`, `served` (requests answered) and `restarts`."""
        if self.processors == 1:
            alive = self.processor.alive
            return [
                {"name": "processor", "pid": self.processor.pid, "port": self.processor_port,
                 "alive": alive, "serving": alive, "restarts": 0}
            ]  # fmt: skip
        response = httpx.get(f"{self.processor_url}{STATUS_PATH}", timeout=10)
        instances: list[dict[str, Any]] = response.raise_for_status().json()["instances"]
        return instances

    def processor_pids(self) -> list[int]:
        """The pid of each processor process alive now, in instance order."""
        return [i["pid"] for i in self.processor_instances() if i["alive"]]

    def kill_processor(self, index: int = 0) -> int:
        """SIGKILL processor process `index` (0-based), as a crashing instance dies, and return
        its pid once it is gone. A fleet starts a replacement at once, as Cloud Run replaces a
        crashed instance (`wait_for_processors()` waits until it serves); a lone processor stays
        dead until `start_processor()`."""
        if self.processors == 1:
            lone = self.processor.process
            if lone is None or index != 0:
                raise ValueError(f"no processor process {index} to kill")
            self.processor.signal(signal.SIGKILL)
            lone.wait(timeout=WAIT_SECONDS)
            return lone.pid
        pid: int = self.processor_instances()[index]["pid"]
        os.kill(pid, signal.SIGKILL)
        self._wait(lambda: pid not in self.processor_pids(), f"processor pid {pid} to die")
        return pid

    def wait_for_processors(self, timeout: float = WAIT_SECONDS) -> None:
        """Wait until every processor process serves (a fleet's replacements included)."""
        self._wait(
            lambda: all(i["serving"] for i in self.processor_instances()),
            "every processor process to serve",
            timeout,
        )

    def _wait(
        self, condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS
    ) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out waiting for {what}: {self.processor_instances()}")
            time.sleep(0.05)

    def stop(self) -> None:
        self.service.stop()
        self.processor.stop()


def start_stack(log_dir: Path, *, processors: int = 1, **settings_env: str) -> Stack:
    """Start a service and a processor (`processors` processes behind one push endpoint) on
    topics of their own; LONGRUN_* settings override the test defaults."""
    suffix = uuid.uuid4().hex[:10]
    env_settings = {
        "LONGRUN_STAGES_TOPIC": f"stages-{suffix}",
        "LONGRUN_DEAD_LETTER_TOPIC": f"dead-letter-{suffix}",
        "LONGRUN_LOCAL": "true",
        "LONGRUN_ALLOW_ANONYMOUS_USERS": "true",
        # Tests and benchmarks submit as one user far past the product's quotas: off unless a
        # caller (the quota tests) sets them.
        "LONGRUN_JOBS_PER_HOUR": "0",
        "LONGRUN_ACTIVE_JOBS_PER_USER": "0",
        # The machines running tests share their cores with emulators just started (and with
        # other runs): a slow reply there is load, not an outage. The outage tests set 5.
        "LONGRUN_BACKEND_TIMEOUT_SECONDS": "30",
        **settings_env,
    }
    env = stack_env(
        os.environ["GOOGLE_CLOUD_PROJECT"],
        os.environ["FIRESTORE_EMULATOR_HOST"],
        os.environ["PUBSUB_EMULATOR_HOST"],
        os.environ["STORAGE_EMULATOR_HOST"],
        **env_settings,
    )
    settings = Settings.model_validate(
        {k.removeprefix("LONGRUN_").lower(): v for k, v in env_settings.items()}
    )
    Storage(settings).ensure_bucket()
    service_port, processor_port = free_port(), free_port()
    processor_url = f"http://127.0.0.1:{processor_port}"
    ensure_topology(
        Topology(
            settings=settings,
            push_endpoint=f"{processor_url}/pubsub/push",
            dead_letter_endpoint=f"{processor_url}/pubsub/dead-letter",
        )
    )
    stack = Stack(
        settings=settings,
        env=env,
        log_dir=log_dir,
        service=app_process("service", service_port, env, log_dir),
        processor=processor_process(processor_port, env, log_dir, processors),
        api_url=f"http://127.0.0.1:{service_port}",
        processor_url=processor_url,
        processor_port=processor_port,
        processors=processors,
    )
    stack.service.start()
    wait_until_ready(f"{stack.api_url}/healthz", stack.service, WAIT_SECONDS)
    stack.start_processor()
    return stack
