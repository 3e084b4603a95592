"""Fixtures: Google's real emulators for the session, empty data for every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from deploy.local import emulators
from deploy.local.ephemeral import Stack, start_stack
from tests.support import JobsWatcher

PROJECT = "longrun-test"


@pytest.fixture(scope="session")
def log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("logs")


@pytest.fixture(scope="session", autouse=True)
def emulator_hosts(log_dir: Path) -> Iterator[dict[str, str]]:
    """Firestore, Pub/Sub, Storage and Auth emulators: the ones the environment names, or new
    ones."""
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
    started = emulators.start_missing(os.environ["GOOGLE_CLOUD_PROJECT"], log_dir)
    yield {
        "firestore": os.environ["FIRESTORE_EMULATOR_HOST"],
        "pubsub": os.environ["PUBSUB_EMULATOR_HOST"],
        "storage": os.environ["STORAGE_EMULATOR_HOST"],
        "auth": os.environ["FIREBASE_AUTH_EMULATOR_HOST"],
    }
    for emulator in started:
        emulator.stop()


@pytest.fixture(autouse=True)
def empty_firestore(emulator_hosts: dict[str, str]) -> None:
    """Every test starts with no documents (the emulator's own reset endpoint)."""
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    url = (
        f"http://{emulator_hosts['firestore']}/emulator/v1/projects/{project}"
        "/databases/(default)/documents"
    )
    httpx.delete(url, timeout=10).raise_for_status()


@pytest.fixture(scope="session")
def stack(log_dir: Path) -> Iterator[Stack]:
    """The default stack most tests share."""
    running = start_stack(log_dir)
    yield running
    running.stop()


@pytest.fixture
def make_stack(log_dir: Path) -> Iterator[Callable[..., Stack]]:
    """A stack with settings of its own (LONGRUN_* variables), stopped after the test."""
    made: list[Stack] = []

    def make(**settings_env: str) -> Stack:
        running = start_stack(log_dir / uuid.uuid4().hex[:6], **settings_env)
        made.append(running)
        return running

    yield make
    for running in made:
        running.stop()


@pytest.fixture(scope="session")
def db(emulator_hosts: dict[str, str]) -> firestore.Client:
    """A synchronous Firestore client, the kind that can listen like a web client."""
    return firestore.Client(project=os.environ["GOOGLE_CLOUD_PROJECT"])


@pytest.fixture
def api(stack: Stack) -> Iterator[httpx.Client]:
    with stack.api() as client:
        yield client


@pytest.fixture
def jobs_watcher(db: firestore.Client, stack: Stack) -> Iterator[JobsWatcher]:
    """A listener on the default stack's jobs, started before the test submits anything."""
    watcher = JobsWatcher.start(db, stack.settings)
    yield watcher
    watcher.stop()
