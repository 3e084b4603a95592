"""Fixtures: Google's real emulators for the session, empty data for every test."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from deploy.local import emulators
from deploy.local.ephemeral import Stack, start_stack
from tests.support import JobsWatcher

PROJECT = "longrun-test"
# The stacks a test made, so that its failure report can show their logs.
_MADE_STACKS = pytest.StashKey[list[Stack]]()
# How much of each process's log a failure report shows.
_LOG_TAIL_LINES = 30
_LOG_LINE_CHARS = 400


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
    # The first request to a new emulator can wait on its JVM warming up on a loaded machine.
    httpx.delete(url, timeout=60).raise_for_status()


@pytest.fixture(scope="session")
def stack(log_dir: Path) -> Iterator[Stack]:
    """The default stack most tests share."""
    running = start_stack(log_dir)
    yield running
    running.stop()


@pytest.fixture
def make_stack(log_dir: Path, request: pytest.FixtureRequest) -> Iterator[Callable[..., Stack]]:
    """A stack with settings of its own (LONGRUN_* variables), stopped after the test;
    `processors=N` runs N processor processes behind its push endpoint (see Stack)."""
    made: list[Stack] = []

    def make(processors: int = 1, **settings_env: str) -> Stack:
        running = start_stack(log_dir / uuid.uuid4().hex[:6], processors=processors, **settings_env)
        made.append(running)
        request.node.stash.setdefault(_MADE_STACKS, []).append(running)
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


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """A failed test's report ends with the tail of each processor process's log of every stack
    it used (and names the other logs), so a failure shows what each processor did."""
    report = yield
    if call.when == "call" and report.failed:
        for running in _stacks_used_by(item):
            for path in running.processor_logs:
                report.sections.append((f"log {path} (last {_LOG_TAIL_LINES} lines)", _tail(path)))
            others = sorted(p.name for p in running.log_dir.glob("*.log"))
            report.sections.append((f"logs in {running.log_dir}", " ".join(others)))
    return report


def _stacks_used_by(item: pytest.Item) -> list[Stack]:
    fixtures = getattr(item, "funcargs", {}).values()
    used = [value for value in fixtures if isinstance(value, Stack)]
    used += item.stash.get(_MADE_STACKS, [])
    return list({id(running): running for running in used}.values())


def _tail(path: Path) -> str:
    lines = path.read_text(errors="replace").splitlines() if path.exists() else []
    return "\n".join(line[:_LOG_LINE_CHARS] for line in lines[-_LOG_TAIL_LINES:])
