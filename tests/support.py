"""Helpers the tests share: a running stack of real processes, and a job watcher on Firestore."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import ssl
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import trustme
from google.cloud import firestore

from deploy.local.ephemeral import WAIT_SECONDS, Stack
from deploy.local.topology import Topology, ensure_topology
from jobs.cloud.store import job_from_document
from jobs.contract.models import Job, StageMessage, StageState, run_name, utcnow
from jobs.contract.settings import Settings

# How long a listener may stay silent before JobsWatcher reads the job itself.
_QUIET_SECONDS = 5.0


def a_job(job_id: str = "j", *, stages: dict[str, float] | None = None, **fields: Any) -> Job:
    """A diagnostic job as decisions and clients see it, just created: a stage per name in
    `stages` (with its weight; one `step-1` if none), other fields as given."""
    now = utcnow()
    weights = stages or {"step-1": 1.0}
    return Job(
        job_id=job_id,
        owner="alice",
        pipeline="diagnostic",
        input={},
        stages=[StageState(name=n, label=n.capitalize(), weight=w) for n, w in weights.items()],
        created_at=now,
        updated_at=now,
        expire_at=now + timedelta(days=7),
        **fields,
    )


@dataclass
class JobsWatcher:
    """Every version of every job document, as a Firestore listener (a client) receives them.

    It listens to the whole collection from before a test submits anything, so it sees each job
    from its first version on. Each test starts with an empty database.
    """

    _history: dict[str, list[Job]] = field(default_factory=dict)
    _changed: threading.Condition = field(default_factory=threading.Condition)
    _watch: Any = None
    _jobs: Any = None  # the collection, read directly when the listener goes quiet

    @classmethod
    def start(cls, client: firestore.Client, settings: Settings) -> JobsWatcher:
        watcher = cls(_jobs=client.collection(settings.jobs_collection))
        watcher._listen()
        return watcher

    def _listen(self) -> None:
        ready = threading.Event()

        def on_snapshot(_docs: list[Any], changes: list[Any], _read_time: Any) -> None:
            with self._changed:
                for change in changes:
                    if change.type.name != "REMOVED":
                        self._receive(job_from_document(change.document.to_dict()))
                self._changed.notify_all()
            ready.set()

        self._watch = self._jobs.on_snapshot(on_snapshot)
        if not ready.wait(WAIT_SECONDS):
            raise AssertionError("the Firestore listener never started")

    def _receive(self, job: Job) -> None:
        versions = self._history.setdefault(job.job_id, [])
        # A listener started again sends every job as it is now: a version already seen.
        if not versions or versions[-1] != job:
            versions.append(job)

    def history(self, job_id: str) -> list[Job]:
        with self._changed:
            return list(self._history.get(job_id, []))

    def wait_for(
        self, job_id: str, predicate: Callable[[Job], bool], timeout: float = WAIT_SECONDS
    ) -> Job:
        """The first version of the job that satisfies `predicate`.

        A listener whose stream broke can stop calling back without a word (the emulator's,
        under load), so after a quiet spell the job is read directly; if the read shows a version
        the listener never delivered, the listener is started again, as a client would, and its
        first snapshot brings the history up to date.
        """
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
                if not self._changed.wait(min(left, _QUIET_SECONDS)):
                    read = self._read(job_id)
                    if read is not None and (not versions or versions[-1] != read):
                        self._listen_again()

    def _listen_again(self) -> None:
        """Replace the listener; called holding `_changed`, which the new one's callback needs."""
        self._changed.release()
        try:
            self.stop()
            self._listen()
        finally:
            self._changed.acquire()

    def _read(self, job_id: str) -> Job | None:
        snapshot = self._jobs.document(job_id).get()
        return job_from_document(snapshot.to_dict()) if snapshot.exists else None

    def wait_terminal(self, job_id: str, timeout: float = WAIT_SECONDS) -> Job:
        return self.wait_for(job_id, lambda job: job.status.terminal, timeout)

    def stop(self) -> None:
        if self._watch is not None:
            self._watch.unsubscribe()


def publish_by_hand(stack: Stack, job_id: str, stage: str, item: int | None = None) -> str:
    """Publish a stage (or item) message the way the system does; return its message id."""
    import google.cloud.pubsub_v1 as pubsub_v1

    publisher = pubsub_v1.PublisherClient()
    try:
        data = StageMessage(job_id=job_id, stage=stage, item=item).model_dump_json().encode()
        message_id: str = publisher.publish(stack.settings.stages_topic_path, data).result(30)
        return message_id
    finally:
        publisher.stop()


def processor_log_lines(stack: Stack) -> list[dict[str, Any]]:
    """The processor's JSON log lines so far (every process's, when it is a fleet)."""
    by_process = processor_log_lines_by_process(stack).values()
    if len(by_process) == 1:
        return next(iter(by_process))
    merged = [line for lines in by_process for line in lines]
    return sorted(merged, key=lambda line: line.get("time", ""))


def processor_log_lines_by_process(stack: Stack) -> dict[str, list[dict[str, Any]]]:
    """Each processor process's JSON log lines so far, by its name (`processor`, or
    `processor-1`... in a fleet; a replaced process's successor appends to the same log)."""
    by_process: dict[str, list[dict[str, Any]]] = {}
    for path in stack.processor_logs:
        lines = path.read_text().splitlines() if path.exists() else []
        by_process[path.stem] = [json.loads(line) for line in lines if line.startswith("{")]
    return by_process


def processor_claiming(stack: Stack, job_id: str, stage: str) -> int | None:
    """The index (for `stack.kill_processor`) of the processor process that claimed the stage
    last, by the processes' logs; None while none has."""
    claims = [
        (line.get("time", ""), index)
        for index, lines in enumerate(processor_log_lines_by_process(stack).values())
        for line in lines
        if (line.get("job_id"), line.get("stage"), line["message"])
        == (job_id, stage, "claim claimed")
    ]
    return max(claims)[1] if claims else None


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


def submit_job(api: Any, pipeline: str, job_input: dict[str, Any]) -> str:
    """Submit a job through the API and return its id."""
    response = api.post("/v1/jobs", json={"pipeline": pipeline, "input": job_input})
    assert response.status_code == 202, response.text
    job_id: str = response.json()["job_id"]
    return job_id


def submit_diagnostic(api: Any, **diagnostic_input: Any) -> str:
    """Submit a diagnostic job through the API and return its id."""
    return submit_job(api, "diagnostic", diagnostic_input)


def submit_media(api: Any, **media_input: Any) -> str:
    """Submit a media-analysis job through the API and return its id."""
    return submit_job(api, "media-analysis", media_input)


def log_lines(stack: Stack, job_id: str, message: str) -> list[dict[str, Any]]:
    """The processor's log lines about one job that carry exactly `message`."""
    return [
        line
        for line in processor_log_lines(stack)
        if line.get("job_id") == job_id and line["message"] == message
    ]


def body_completions(stack: Stack, job_id: str) -> dict[str, int]:
    """How many times each diagnostic stage body (or item, as `stage~n`) ran to its end, by
    its own log lines."""
    counts: dict[str, int] = {}
    for line in log_lines(stack, job_id, "diagnostic step body completed"):
        name = run_name(line["stage"], None if line.get("item") is None else int(line["item"]))
        counts[name] = counts.get(name, 0) + 1
    return counts


def run_document(db: firestore.Client, stack: Stack, job_id: str, stage: str) -> dict[str, Any]:
    """The internal run document of one stage (lease, attempts, cursor, output)."""
    ref = db.collection(stack.settings.jobs_collection).document(job_id)
    return ref.collection("runs").document(stage).get().to_dict() or {}


def wait_until(condition: Callable[[], bool], what: str, timeout: float = WAIT_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def lose_pending_messages(stack: Stack) -> None:
    """Delete and re-create the push subscription: whatever it held is gone for good."""
    import google.cloud.pubsub_v1 as pubsub_v1

    subscriber = pubsub_v1.SubscriberClient()
    topology = Topology(
        settings=stack.settings,
        push_endpoint=f"{stack.processor_url}/pubsub/push",
        dead_letter_endpoint=f"{stack.processor_url}/pubsub/dead-letter",
    )
    path = subscriber.subscription_path(stack.settings.project_id, topology.subscription)
    subscriber.delete_subscription(subscription=path)
    subscriber.close()
    ensure_topology(topology)


def sweep(stack: Stack) -> list[dict[str, str]]:
    response = httpx.post(f"{stack.processor_url}/tasks/sweep", timeout=30)
    response.raise_for_status()
    republished: list[dict[str, str]] = response.json()["republished"]
    return republished


def queued_job_whose_message_was_lost(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> tuple[Stack, JobsWatcher, str]:
    """A stack that sweeps at once, and a 2-stage job on it still queued, whose first stage
    message Pub/Sub lost before any processor saw it; the processor is running again."""
    stack = make_stack(LONGRUN_SWEEP_STALE_SECONDS="0")
    stack.processor.stop()
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2)
    lose_pending_messages(stack)
    stack.start_processor()
    return stack, watcher, job_id


def unsigned_id_token(uid: str, **claims: Any) -> str:
    """A Firebase ID token for `uid` of the test project with no signature, as the Auth emulator
    makes them (and the Firestore emulator and firebase-admin on the emulator accept)."""
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    now = int(time.time())
    body = {
        "sub": uid,
        "user_id": uid,
        "aud": project,
        "iss": f"https://securetoken.google.com/{project}",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
        "firebase": {"sign_in_provider": "password", "identities": {}},
        **claims,
    }

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(body)}."


@contextlib.contextmanager
def serve_tls(
    handler: type[BaseHTTPRequestHandler], ca: trustme.CA | None = None, *names: str
) -> Iterator[tuple[int, ssl.SSLContext]]:
    """An HTTPS server for `localhost` (and `names`) on a free loopback port, with a client
    context that trusts it (`ca`, or a throwaway one): its port and that context."""
    ca = ca or trustme.CA()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost", *names).configure_cert(server_context)
    server.socket = server_context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    try:
        yield server.server_address[1], client_context
    finally:
        server.shutdown()
        server.server_close()
