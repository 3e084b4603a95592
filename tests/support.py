"""Helpers the tests share: a running stack of real processes, and a job watcher on Firestore."""

from __future__ import annotations

import os
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from deploy.local.processes import ManagedProcess, free_port, wait_until_ready
from deploy.local.stack import app_process, stack_env
from deploy.local.topology import Topology, ensure_topology
from jobs.models import Job
from jobs.settings import Settings
from jobs.store import job_from_document

WAIT_SECONDS = 60.0


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

    def api(self) -> httpx.Client:
        return httpx.Client(base_url=self.api_url, timeout=30)

    def start_processor(self, grace_seconds: float = 8) -> None:
        """(Re)start the processor on its port, e.g. after a test killed it."""
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
        **settings_env,
    }
    env = stack_env(
        os.environ["GOOGLE_CLOUD_PROJECT"],
        os.environ["FIRESTORE_EMULATOR_HOST"],
        os.environ["PUBSUB_EMULATOR_HOST"],
        **env_settings,
    )
    settings = Settings(**{k.removeprefix("LONGRUN_").lower(): v for k, v in env_settings.items()})
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


@dataclass
class JobsWatcher:
    """Every version of every job document, as a Firestore listener (a client) receives them.

    It listens to the whole collection from before a test submits anything, so it sees each job
    from its first version on. Each test starts with an empty database.
    """

    _history: dict[str, list[Job]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _watch: Any = None

    @classmethod
    def start(cls, client: firestore.Client, settings: Settings) -> JobsWatcher:
        watcher = cls()
        ready = threading.Event()

        def on_snapshot(_docs: list[Any], changes: list[Any], _read_time: Any) -> None:
            with watcher._changed:
                for change in changes:
                    if change.type.name != "REMOVED":
                        job = job_from_document(change.document.to_dict())
                        watcher._history.setdefault(job.job_id, []).append(job)
                watcher._changed.notify_all()
            ready.set()

        watcher._watch = client.collection(settings.jobs_collection).on_snapshot(on_snapshot)
        if not ready.wait(WAIT_SECONDS):
            raise AssertionError("the Firestore listener never started")
        return watcher

    def history(self, job_id: str) -> list[Job]:
        with self._changed:
            return list(self._history.get(job_id, []))

    def wait_for(
        self, job_id: str, predicate: Callable[[Job], bool], timeout: float = WAIT_SECONDS
    ) -> Job:
        """The first version of the job that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        seen = 0
        with self._changed:
            while True:
                versions = self._history.get(job_id, [])
                for job in versions[seen:]:
                    if predicate(job):
                        return job
                seen = len(versions)
                left = deadline - time.monotonic()
                if left <= 0:
                    last = versions[-1] if versions else None
                    raise AssertionError(f"job {job_id} never got there; last seen: {last}")
                self._changed.wait(left)

    def wait_terminal(self, job_id: str, timeout: float = WAIT_SECONDS) -> Job:
        return self.wait_for(job_id, lambda job: job.status.terminal, timeout)

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.unsubscribe()


def publish_by_hand(stack: Stack, job_id: str, stage: str) -> str:
    """Publish a stage message the way the system does, returning its Pub/Sub message id."""
    import google.cloud.pubsub_v1 as pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    try:
        data = f'{{"job_id": "{job_id}", "stage": "{stage}"}}'.encode()
        message_id: str = publisher.publish(stack.settings.stages_topic_path, data).result(30)
        return message_id
    finally:
        publisher.stop()


def processor_log_lines(stack: Stack) -> list[dict[str, Any]]:
    """The processor's JSON log lines so far."""
    import json

    path = stack.log_dir / "processor.log"
    lines = path.read_text().splitlines() if path.exists() else []
    return [json.loads(line) for line in lines if line.startswith("{")]


def wait_for_claim(stack: Stack, message_id: str, timeout: float = WAIT_SECONDS) -> str:
    """Wait until the processor has decided what to do with a message; return its decision."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in processor_log_lines(stack):
            if line.get("message_id") == message_id and line["message"].startswith("claim "):
                outcome: str = line["message"].removeprefix("claim ")
                return outcome
        time.sleep(0.05)
    raise AssertionError(f"the processor never handled message {message_id}")


# The console script installed beside the interpreter running the tests.
LONGRUN = str(Path(sys.executable).with_name("longrun"))
