"""A throwaway stack for tests and benchmarks: the service and the processor as real uvicorn
processes on free ports, with Pub/Sub topics of their own, on emulators that are already running
(named by FIRESTORE_, PUBSUB_, STORAGE_ and FIREBASE_AUTH_EMULATOR_HOST)."""

from __future__ import annotations

import functools
import os
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.local.processes import ManagedProcess, free_port, wait_until_ready
from deploy.local.stack import app_process, stack_env
from deploy.local.topology import Topology, ensure_topology
from jobs.cloud.identity import IdentityToolkit
from jobs.cloud.storage import Storage
from jobs.contract.settings import Settings

WAIT_SECONDS = 60.0
DEFAULT_USER = "alice"


@functools.cache
def user_token(auth_emulator: str, user: str) -> str:
    """An ID token from the Auth emulator for the email user `<user>@example.com`."""
    toolkit = IdentityToolkit(api_key="emulator", emulator_host=auth_emulator)
    return toolkit.user(f"{user}@example.com", "longrun-password").id_token


@dataclass
class Stack:
    """A service and a processor as real uvicorn processes, with topics of their own."""

    settings: Settings
    env: dict[str, str]
    log_dir: Path
    service: ManagedProcess
    processor: ManagedProcess
    api_url: str
    processor_url: str
    processor_port: int

    def auth_headers(self, user: str = DEFAULT_USER) -> dict[str, str]:
        """The `Authorization` header of a signed-in user (created on first use)."""
        token = user_token(self.env["FIREBASE_AUTH_EMULATOR_HOST"], user)
        return {"Authorization": f"Bearer {token}"}

    def api(self, user: str = DEFAULT_USER) -> httpx.Client:
        """A client of the API, signed in as `user`."""
        return httpx.Client(base_url=self.api_url, timeout=30, headers=self.auth_headers(user))

    def start_processor(self, grace_seconds: float = 8) -> None:
        """(Re)start the processor on its port, e.g. after a test killed it."""
        self.processor.stop()  # reaps a dead one and closes its log
        self.processor = app_process(
            "processor", self.processor_port, self.env, self.log_dir, grace_seconds
        )
        self.processor.start()
        wait_until_ready(f"{self.processor_url}/healthz", self.processor, WAIT_SECONDS)

    def stop(self) -> None:
        self.service.stop()
        self.processor.stop()


def start_stack(log_dir: Path, **settings_env: str) -> Stack:
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
        processor=app_process("processor", processor_port, env, log_dir),
        api_url=f"http://127.0.0.1:{service_port}",
        processor_url=processor_url,
        processor_port=processor_port,
    )
    stack.service.start()
    wait_until_ready(f"{stack.api_url}/healthz", stack.service, WAIT_SECONDS)
    stack.start_processor()
    return stack
