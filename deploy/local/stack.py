"""`longrun dev`: the whole system on one machine, on Google's emulators, kept running.

Starts the Firestore and Pub/Sub emulators, makes the topics and push subscriptions, runs the
service and the processor (one process, or a fleet of N behind the push endpoint), and starts
either again if it dies (as Cloud Run would; a fleet replaces its own dead processes). Stopping
it stops every process it started.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from deploy.local import emulators, prerequisites
from deploy.local.apps import HOST, AppName, app_process, processor_process
from deploy.local.processes import (
    ManagedProcess,
    StackError,
    port_is_free,
    wait_until_ready,
)
from deploy.local.topology import Topology, ensure_topology
from jobs.cloud.storage import Storage
from jobs.contract.settings import Settings

log = logging.getLogger(__name__)

# Restarts closer together than this are delayed, so a crash loop does not spin the CPU.
_MIN_RESTART_GAP_SECONDS = 2.0
# The security rules the deploy scripts install; the local Firestore enforces the same ones.
RULES = Path(__file__).parents[1] / "firestore.rules"
# Cloud Scheduler calls the sweeper each minute in production (its shortest schedule); the
# local stack calls it more often, so lost work is picked up about as soon as its lease ends.
SWEEP_EVERY_SECONDS = 10.0
# firebase-tools loads for about 15 s of CPU on its first start (a minute on a busy machine):
# whoever waits is told so, or `make dev` would look hung.
_AUTH = "Firebase Auth emulator"
_AUTH_NOTE = "firebase-tools loads for about 15 s of CPU, longer on a busy machine"
# Signs webhooks locally (receivers verify with it); production mounts a Secret Manager secret.
DEV_WEBHOOK_SECRET = "longrun-dev-webhook-secret"


@dataclass(frozen=True)
class Ports:
    firestore: int = 8080
    pubsub: int = 8085
    storage: int = 9199
    auth: int = 9099
    service: int = 8000
    processor: int = 8001


def stack_env(
    project: str, firestore: str, pubsub: str, storage: str, **extra: str
) -> dict[str, str]:
    """The environment the apps get: Google's emulator variables plus longrun's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGRUN_")}
    env.update(
        GOOGLE_CLOUD_PROJECT=project,
        FIRESTORE_EMULATOR_HOST=firestore,
        PUBSUB_EMULATOR_HOST=pubsub,
        STORAGE_EMULATOR_HOST=storage,
        PYTHONUNBUFFERED="1",
        **extra,
    )
    return env


@dataclass
class LocalStack:
    """The supervisor behind `longrun dev`. `say` tells a person what happened; `waiting`, while
    the emulators start, says about once a second what they are waiting for (None when done)."""

    say: Callable[[str], None]
    waiting: Callable[[str | None], None] = lambda _text: None
    ports: Ports = field(default_factory=Ports)
    processors: int = 1
    project: str = "longrun-local"
    log_dir: Path = Path(".longrun/logs")
    transcript_span_seconds: float | None = None  # LONGRUN_TRANSCRIPT_SPAN_SECONDS
    _emulators: list[emulators.Emulator] = field(default_factory=list)
    _apps: dict[AppName, ManagedProcess] = field(default_factory=dict)

    def _transcription_env(self) -> dict[str, str]:
        spans = self.transcript_span_seconds
        return {} if spans is None else {"LONGRUN_TRANSCRIPT_SPAN_SECONDS": f"{spans:g}"}

    def check(self) -> None:
        """Fail fast, with one clear sentence, when the stack cannot start here."""
        lacking = prerequisites.missing("dev")
        if lacking:
            raise StackError(
                "This machine lacks what the local stack needs (README.md, Prerequisites):\n"
                + "\n".join(f"  {line}" for line in lacking)
            )
        for what, port in (
            ("Firestore emulator", self.ports.firestore),
            ("Pub/Sub emulator", self.ports.pubsub),
            ("Cloud Storage emulator", self.ports.storage),
            ("Firebase Auth emulator", self.ports.auth),
            ("API", self.ports.service),
            ("processor", self.ports.processor),
        ):
            if not port_is_free(HOST, port):
                raise StackError(
                    f"Port {port} (for the {what}) is already in use: "
                    "stop whatever listens there, or another `longrun dev`."
                )

    def start(self) -> None:
        self.check()
        self.say("Starting the Firestore, Pub/Sub, Cloud Storage and Firebase Auth emulators...")
        started = emulators.start_together(
            {
                "Firestore emulator": lambda: emulators.start_firestore(
                    self.ports.firestore, self.project, self.log_dir, rules=RULES
                ),
                "Pub/Sub emulator": lambda: emulators.start_pubsub(
                    self.ports.pubsub, self.project, self.log_dir
                ),
                "Cloud Storage emulator": lambda: emulators.start_storage(
                    self.ports.storage, self.log_dir
                ),
                _AUTH: lambda: emulators.start_auth(self.ports.auth, self.project, self.log_dir),
            },
            waiting=self._tell_waiting,
        )
        self.waiting(None)
        self._emulators.extend(started.values())
        firestore, pubsub = started["Firestore emulator"], started["Pub/Sub emulator"]
        storage, auth = started["Cloud Storage emulator"], started[_AUTH]
        page = f"http://{HOST}:{self.ports.service}"
        env = stack_env(
            self.project,
            firestore.host_port,
            pubsub.host_port,
            storage.url,
            FIREBASE_AUTH_EMULATOR_HOST=auth.host_port,
            # The Auth emulator's tokens are unsigned: only a stack marked local may take them.
            LONGRUN_LOCAL="true",
            LONGRUN_ALLOW_ANONYMOUS_USERS="true",
            LONGRUN_ALLOWED_ORIGINS=json.dumps([page, page.replace(HOST, "localhost")]),
            LONGRUN_WEBHOOK_SECRET=DEV_WEBHOOK_SECRET,
            **self._transcription_env(),
        )
        os.environ.update(
            GOOGLE_CLOUD_PROJECT=self.project,
            FIRESTORE_EMULATOR_HOST=firestore.host_port,
            PUBSUB_EMULATOR_HOST=pubsub.host_port,
            STORAGE_EMULATOR_HOST=storage.url,
        )
        Storage(Settings()).ensure_bucket()
        processor_url = f"http://{HOST}:{self.ports.processor}"
        ensure_topology(
            Topology(
                settings=Settings(),
                push_endpoint=f"{processor_url}/pubsub/push",
                dead_letter_endpoint=f"{processor_url}/pubsub/dead-letter",
            )
        )
        self._apps["service"] = app_process("service", self.ports.service, env, self.log_dir)
        self._start_app("service")
        self._apps["processor"] = processor_process(
            self.ports.processor, env, self.log_dir, self.processors
        )
        self._start_app("processor")
        fleet = f" ({self.processors} processes, {processor_url}/_fleet)"
        self.say(
            f"longrun is up: API http://{HOST}:{self.ports.service} "
            f"(docs at /docs), processor {processor_url}{fleet if self.processors > 1 else ''}, "
            f"Firestore {firestore.host_port}, Pub/Sub {pubsub.host_port}, "
            f"Cloud Storage {storage.url}, Auth {auth.host_port}; "
            f"logs in {self.log_dir}/. Ctrl-C stops everything."
        )

    def _tell_waiting(self, names: list[str], seconds: float) -> None:
        note = f"; {_AUTH_NOTE}" if _AUTH in names else ""
        listed = ", the ".join(names[:-1]) + (" and the " if len(names) > 1 else "") + names[-1]
        self.waiting(f"Waiting for the {listed} ({seconds:.0f} s{note})...")

    def _start_app(self, app: AppName) -> None:
        process = self._apps[app]
        process.start()
        port = self.ports.service if app == "service" else self.ports.processor
        # A fleet answers once every one of its processes does, and they start side by side.
        timeout = 30 * max(1, self.processors // 2) if app == "processor" else 30
        wait_until_ready(f"http://{HOST}:{port}/healthz", process, timeout_seconds=timeout)

    def supervise(self, stop: threading.Event) -> None:
        """Restart any app that dies, and call the sweeper each minute, until `stop` is set."""
        last_restart: dict[AppName, float] = {}
        last_sweep = time.monotonic()
        while not stop.wait(0.5):
            if time.monotonic() - last_sweep >= SWEEP_EVERY_SECONDS:
                last_sweep = time.monotonic()
                self._sweep()
            for app, process in self._apps.items():
                if process.alive:
                    continue
                code = process.process.returncode if process.process else None
                gap = time.monotonic() - last_restart.get(app, float("-inf"))
                if gap < _MIN_RESTART_GAP_SECONDS:
                    continue
                self.say(f"The {app} exited (code {code}); starting it again.")
                last_restart[app] = time.monotonic()
                # Whatever of its process group outlived it (a dead fleet's processes) goes too.
                process.stop(grace_seconds=0)
                try:
                    self._start_app(app)
                except StackError as exc:
                    self.say(f"The {app} failed to start again: {exc}")

    def _sweep(self) -> None:
        url = f"http://{HOST}:{self.ports.processor}/tasks/sweep"
        try:
            republished = httpx.post(url, timeout=30).raise_for_status().json()["republished"]
        except httpx.HTTPError as exc:
            self.say(f"The sweep failed: {exc}")
            return
        if republished:
            self.say(f"The sweeper re-published {len(republished)} abandoned stage(s).")

    def stop(self) -> None:
        """Stop the apps first (so nothing writes to a dying emulator), then the emulators."""
        for process in self._apps.values():
            process.stop()
        for emulator in reversed(self._emulators):
            emulator.stop()
        self._apps.clear()
        self._emulators.clear()
