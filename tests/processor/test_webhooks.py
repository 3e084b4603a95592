"""Webhooks: a finished job calls its callback once, signed; failures are retried, bounded and
recorded on the job without touching its status; unsafe callbacks are refused at submit."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import trustme
from google.cloud import firestore

from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.store import job_to_document
from jobs.contract.models import (
    Job,
    JobStatus,
    StageState,
    StageStatus,
    WebhookDelivery,
    WebhookStatus,
    utcnow,
)
from jobs.contract.sources import hosts_file_addresses
from tests.support import JobsWatcher, submit_diagnostic

SECRET = "test-webhook-secret"
MAX_ATTEMPTS = 3
# How old a signature a receiver accepts, as the README recommends.
TOLERANCE_SECONDS = 300


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A local https:// webhook receiver: `/ok/*` answers 200, `/flaky/*` 500 twice then 200,
    `/down/*` always 500, `/reject/*` 400."""

    base_url: str
    calls: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, behaviour: str) -> str:
        return f"{self.base_url}/{behaviour}/{uuid.uuid4().hex}"

    def calls_to(self, url: str) -> list[Received]:
        path = httpx.URL(url).path
        with self.lock:
            return [call for call in self.calls if call.path == path]


def make_handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            with receiver.lock:
                receiver.calls.append(Received(self.path, dict(self.headers.items()), body))
                seen = sum(1 for call in receiver.calls if call.path == self.path)
            behaviour = self.path.split("/")[1]
            status = {"ok": 200, "down": 500, "reject": 400}.get(behaviour, 500)
            if behaviour == "flaky":
                status = 500 if seen <= 2 else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def tls() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def receiver(tls: trustme.CA) -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    receiver = Receiver(base_url=f"https://localhost:{server.server_address[1]}")
    server.RequestHandlerClass = make_handler(receiver)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.issue_cert("localhost", socket.gethostname()).configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield receiver
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def hook_stack(log_dir: Path, tls: trustme.CA) -> Iterator[Stack]:
    """A stack that signs webhooks, with the loopback receiver allowed by name (tests only)."""
    ca_file = log_dir / "webhook-ca.pem"
    tls.cert_pem.write_to_path(str(ca_file))
    stack = start_stack(
        log_dir / "webhooks",
        LONGRUN_WEBHOOK_SECRET=SECRET,
        LONGRUN_WEBHOOK_ALLOWED_HOSTS='["localhost"]',
        LONGRUN_WEBHOOK_CA_FILE=str(ca_file),
        LONGRUN_WEBHOOK_MAX_ATTEMPTS=str(MAX_ATTEMPTS),
        LONGRUN_WEBHOOK_BACKOFF_SECONDS="0.2",
    )
    yield stack
    stack.stop()


@pytest.fixture
def watcher(db: firestore.Client, hook_stack: Stack) -> Iterator[JobsWatcher]:
    watcher = JobsWatcher.start(db, hook_stack.settings)
    yield watcher
    watcher.stop()


def submit(stack: Stack, callback_url: str, **diagnostic_input: Any) -> httpx.Response:
    body = {"pipeline": "diagnostic", "input": diagnostic_input, "callback_url": callback_url}
    with stack.api() as api:
        return api.post("/v1/jobs", json=body)


def webhook_settled(job: Job) -> bool:
    return job.webhook is not None and job.webhook.status != WebhookStatus.PENDING


def verified_body(call: Received, secret: str = SECRET) -> dict[str, Any]:
    """Check the signature as a receiver would, and return the parsed body."""
    fields = dict(part.split("=", 1) for part in call.headers["Longrun-Signature"].split(","))
    timestamp = int(fields["t"])
    expected = hmac.new(
        secret.encode(), f"{timestamp}.".encode() + call.body, hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(expected, fields["v1"]), "the signature does not match"
    assert abs(time.time() - timestamp) < TOLERANCE_SECONDS
    body: dict[str, Any] = json.loads(call.body)
    return body


def as_time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


@pytest.mark.parametrize(
    ("diagnostic_input", "status"),
    [({"stages": 2}, JobStatus.SUCCEEDED), ({"stages": 2, "fail_stage": 2}, JobStatus.FAILED)],
)
def test_a_finished_job_calls_its_webhook_once_signed_with_its_summary(
    hook_stack: Stack,
    receiver: Receiver,
    watcher: JobsWatcher,
    diagnostic_input: dict[str, Any],
    status: JobStatus,
) -> None:
    url = receiver.url("ok")
    response = submit(hook_stack, url, **diagnostic_input)
    job_id = response.json()["job_id"]

    job = watcher.wait_for(job_id, webhook_settled)
    calls = receiver.calls_to(url)

    assert response.status_code == 202
    assert job.status == status
    assert job.webhook is not None
    assert job.webhook.status == WebhookStatus.DELIVERED
    assert job.webhook.attempts == 1
    assert job.webhook.last_status_code == 200
    assert job.webhook.delivered_at is not None
    assert len(calls) == 1
    body = verified_body(calls[0])
    assert calls[0].headers["Content-Type"] == "application/json"
    assert calls[0].headers["Longrun-Event"] == f"job.{status.value}"
    assert calls[0].headers["Longrun-Webhook-Id"].startswith(f"{job_id}.{status.value}.")
    assert body["event"] == f"job.{status.value}"
    assert body["job_id"] == job_id
    assert body["pipeline"] == "diagnostic"
    assert body["status"] == status.value
    assert body["result"] == job.result
    assert body["artifacts"] == sorted(job.artifacts)
    assert [(s["name"], s["status"]) for s in body["stages"]] == [
        (s.name, s.status.value) for s in job.stages
    ]
    assert as_time(body["finished_at"]) == job.finished_at
    assert as_time(body["created_at"]) == job.created_at
    if status == JobStatus.FAILED:
        assert body["error"]["stage"] == "step-2"
        assert job.error is not None
        assert body["error"]["code"] == job.error.code
    else:
        assert body["error"] is None


def test_a_receiver_that_fails_twice_is_retried_until_it_takes_the_webhook(
    hook_stack: Stack, receiver: Receiver, watcher: JobsWatcher
) -> None:
    url = receiver.url("flaky")
    job_id = submit(hook_stack, url, stages=1).json()["job_id"]

    job = watcher.wait_for(job_id, webhook_settled)
    calls = receiver.calls_to(url)

    assert job.webhook is not None
    assert job.webhook.status == WebhookStatus.DELIVERED
    assert job.webhook.attempts == 3
    assert job.webhook.last_status_code == 200
    assert len(calls) == 3
    assert len({call.headers["Longrun-Webhook-Id"] for call in calls}) == 1
    for call in calls:
        verified_body(call)


def test_a_receiver_that_always_fails_ends_failed_after_the_bound_and_the_job_keeps_its_status(
    hook_stack: Stack, receiver: Receiver, watcher: JobsWatcher
) -> None:
    url = receiver.url("down")
    job_id = submit(hook_stack, url, stages=1).json()["job_id"]

    job = watcher.wait_for(job_id, webhook_settled)
    after_end = [v for v in watcher.history(job_id) if v.finished_at is not None]

    assert job.webhook is not None
    assert job.webhook.status == WebhookStatus.FAILED
    assert job.webhook.attempts == MAX_ATTEMPTS
    assert job.webhook.last_status_code == 500
    assert job.webhook.delivered_at is None
    assert len(receiver.calls_to(url)) == MAX_ATTEMPTS
    assert {version.status for version in after_end} == {JobStatus.SUCCEEDED}


def test_a_receiver_that_refuses_with_a_4xx_is_not_retried(
    hook_stack: Stack, receiver: Receiver, watcher: JobsWatcher
) -> None:
    url = receiver.url("reject")
    job_id = submit(hook_stack, url, stages=1).json()["job_id"]

    job = watcher.wait_for(job_id, webhook_settled)

    assert job.webhook is not None
    assert job.webhook.status == WebhookStatus.FAILED
    assert job.webhook.attempts == 1
    assert job.webhook.last_status_code == 400
    assert len(receiver.calls_to(url)) == 1


def test_a_queued_job_cancelled_by_the_api_calls_its_webhook(
    hook_stack: Stack, receiver: Receiver, watcher: JobsWatcher
) -> None:
    url = receiver.url("ok")
    hook_stack.processor.stop()
    try:
        job_id = submit(hook_stack, url, stages=1).json()["job_id"]
        with hook_stack.api() as api:
            cancelled = api.post(f"/v1/jobs/{job_id}/cancel")
    finally:
        hook_stack.start_processor()

    job = watcher.wait_for(job_id, webhook_settled)

    assert cancelled.status_code == 200
    assert job.status == JobStatus.CANCELLED
    assert job.webhook is not None
    assert job.webhook.status == WebhookStatus.DELIVERED
    body = verified_body(receiver.calls_to(url)[0])
    assert body["event"] == "job.cancelled"
    assert body["status"] == "cancelled"


def store_finished_job(db: firestore.Client, stack: Stack, url: str, updated_ago: timedelta) -> Job:
    """A succeeded job whose webhook is pending, written straight to Firestore."""
    now = utcnow()
    job = Job(
        job_id=uuid.uuid4().hex[:20],
        owner="someone",
        pipeline="diagnostic",
        input={"stages": 1},
        status=JobStatus.SUCCEEDED,
        stages=[StageState(name="step-1", label="Step 1", status=StageStatus.SUCCEEDED)],
        created_at=now - updated_ago,
        updated_at=now - updated_ago,
        finished_at=now - updated_ago,
        expire_at=now + timedelta(days=7),
        callback_url=url,
        webhook=WebhookDelivery(),
    )
    db.collection(stack.settings.jobs_collection).document(job.job_id).set(job_to_document(job))
    return job


def test_a_webhook_whose_message_was_lost_is_delivered_after_a_sweep(
    hook_stack: Stack, receiver: Receiver, watcher: JobsWatcher, db: firestore.Client
) -> None:
    # As a processor that died between the terminal write and publishing the webhook leaves it.
    url = receiver.url("ok")
    job = store_finished_job(db, hook_stack, url, updated_ago=timedelta(hours=1))

    swept = httpx.post(f"{hook_stack.processor_url}/tasks/sweep", timeout=30).json()
    delivered = watcher.wait_for(job.job_id, webhook_settled)

    assert swept["webhooks"] == [job.job_id]
    assert delivered.webhook is not None
    assert delivered.webhook.status == WebhookStatus.DELIVERED
    assert verified_body(receiver.calls_to(url)[0])["job_id"] == job.job_id


def test_a_webhook_being_delivered_is_left_alone_by_the_sweeper(
    hook_stack: Stack, receiver: Receiver, db: firestore.Client
) -> None:
    store_finished_job(db, hook_stack, receiver.url("ok"), updated_ago=timedelta(seconds=1))

    swept = httpx.post(f"{hook_stack.processor_url}/tasks/sweep", timeout=30).json()

    assert swept["webhooks"] == []


def test_a_webhook_message_pubsub_gives_up_on_fails_the_webhook_only(
    hook_stack: Stack, receiver: Receiver, watcher: JobsWatcher, db: firestore.Client
) -> None:
    url = receiver.url("ok")
    job = store_finished_job(db, hook_stack, url, updated_ago=timedelta(seconds=1))
    data = base64.b64encode(json.dumps({"job_id": job.job_id}).encode()).decode()
    message = {"data": data, "attributes": {"kind": "webhook"}, "messageId": "dead-1"}
    body = {"message": message, "subscription": "projects/p/subscriptions/dead-letter"}

    response = httpx.post(f"{hook_stack.processor_url}/pubsub/dead-letter", json=body)
    failed = watcher.wait_for(job.job_id, webhook_settled)

    assert response.status_code == 204
    assert failed.status == JobStatus.SUCCEEDED
    assert failed.webhook is not None
    assert failed.webhook.status == WebhookStatus.FAILED
    assert "gave up" in (failed.webhook.last_error or "")
    assert receiver.calls_to(url) == []


def test_a_running_job_cancelled_calls_its_webhook_when_its_stage_stops(
    hook_stack: Stack, receiver: Receiver, watcher: JobsWatcher
) -> None:
    url = receiver.url("ok")
    job_id = submit(hook_stack, url, stages=2, work_units=200, unit_seconds=0.05).json()["job_id"]
    watcher.wait_for(job_id, lambda job: job.stages[0].progress > 0)
    with hook_stack.api() as api:
        requested = api.post(f"/v1/jobs/{job_id}/cancel")

    job = watcher.wait_for(job_id, webhook_settled)

    assert requested.status_code == 202
    assert job.status == JobStatus.CANCELLED
    assert job.webhook is not None
    assert job.webhook.status == WebhookStatus.DELIVERED
    assert verified_body(receiver.calls_to(url)[0])["event"] == "job.cancelled"


def test_a_callback_to_the_machine_s_own_name_is_refused_at_submit(
    hook_stack: Stack, receiver: Receiver
) -> None:
    # /etc/hosts maps the machine's own name to itself: refused before any job or DNS lookup.
    name = socket.gethostname()
    addresses = hosts_file_addresses(name.lower())
    if not addresses or any(address.is_global for address in addresses):
        pytest.skip(f"/etc/hosts gives {name} no private address here")
    port = httpx.URL(receiver.base_url).port
    url = f"https://{name}:{port}/ok/{uuid.uuid4().hex}"

    response = submit(hook_stack, url, stages=1)

    assert response.status_code == 422
    assert response.json()["code"] == "CALLBACK_NOT_ALLOWED"
    assert receiver.calls_to(url) == []


@pytest.mark.parametrize(
    "callback_url",
    [
        "https://10.0.0.1/hook",
        "https://169.254.169.254/computeMetadata/v1/",
        "http://example.com/hook",
        "https://127.0.0.1/hook",
        "https://[::1]/hook",
        "https://metadata.google.internal/hook",
        "https://user:secret@example.com/hook",
        "ftp://example.com/hook",
    ],
)
def test_a_callback_to_a_private_or_non_https_address_is_refused_at_submit(
    hook_stack: Stack, callback_url: str
) -> None:
    response = submit(hook_stack, callback_url, stages=1)
    with hook_stack.api() as api:
        listed = api.get("/v1/jobs").json()["jobs"]

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "CALLBACK_NOT_ALLOWED"
    assert response.json()["errors"][0]["field"] == "callback_url"
    assert listed == []


def test_localhost_is_refused_where_no_test_setting_allows_it(api: httpx.Client) -> None:
    response = api.post(
        "/v1/jobs",
        json={"pipeline": "diagnostic", "callback_url": "https://localhost:8443/hook"},
    )

    assert response.status_code == 422
    assert response.json()["code"] == "CALLBACK_NOT_ALLOWED"


def test_a_callback_is_refused_where_no_webhook_secret_is_set(api: httpx.Client) -> None:
    response = api.post(
        "/v1/jobs", json={"pipeline": "diagnostic", "callback_url": "https://example.com/hook"}
    )
    listed = api.get("/v1/jobs").json()["jobs"]

    assert response.status_code == 422
    assert response.json()["code"] == "WEBHOOKS_NOT_CONFIGURED"
    assert listed == []


def test_a_job_without_a_callback_has_no_webhook(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=1)

    job = jobs_watcher.wait_terminal(job_id)

    assert job.status == JobStatus.SUCCEEDED
    assert job.webhook is None
    assert job.callback_url is None
