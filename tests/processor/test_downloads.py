"""An https:// source streams into Storage and carries on over deliveries from its cursor.

A local HTTPS server plays the source (served slowly, so a delivery's tiny time budget cuts it),
reached by a public-looking name the stack pins to loopback; Storage, Firestore and Pub/Sub are
the real emulators.
"""

from __future__ import annotations

import contextlib
import ipaddress
import random
import ssl
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import trustme
from annotated_types import Le
from google.cloud import firestore

from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.storage import Storage
from jobs.contract.errors import PermanentError
from jobs.contract.models import Artifact, Job, StageStatus
from jobs.contract.settings import Settings
from pipelines.media.spec import STAGES
from processor.downloads import MAX_RESTARTS, Download
from processor.fetch import AddressRules
from tests.support import (
    JobsWatcher,
    log_lines,
    processor_log_lines,
    run_document,
    serve_tls,
    submit_media,
)

HOST = "vod.example"
CHUNK = 256 * 1024
LIMIT = 16 * 1024 * 1024
PIECE = 64 * 1024


def media(size: int, seed: int) -> bytes:
    """`size` bytes that start like a WAV file (the fetch sniffs them) and are random after."""
    head = b"RIFF" + (size - 8).to_bytes(4, "little") + b"WAVE"
    return head + random.Random(seed).randbytes(size - len(head))


@dataclass(frozen=True)
class Version:
    """One file at the URL, and how the server hands it out."""

    body: bytes
    etag: str | None  # None: neither ETag nor Last-Modified, nothing to tell versions apart
    bytes_per_second: float | None = None  # None: as fast as it goes
    ranges: bool = True  # answers Range with 206
    if_range: bool = True  # answers 200 with the whole file if If-Range no longer matches
    declared: int | None = -1  # Content-Length: -1 the real one, None none


@dataclass
class Source:
    """What the server serves (`first` to the first request, `later` to the rest) and sees."""

    first: Version
    later: Version
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def served_bytes(self) -> int:
        return sum(request["sent"] for request in self.requests)

    def range_starts(self) -> list[int | None]:
        return [_start(request["range"]) for request in self.requests]


def _start(header: str | None) -> int | None:
    return int(header.removeprefix("bytes=").removesuffix("-")) if header else None


def handler_for(source: Source) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen = {"range": self.headers["Range"], "if_range": self.headers["If-Range"]}
            with source.lock:
                version = source.later if source.requests else source.first
                source.requests.append(seen | {"status": 0, "sent": 0})
                record = source.requests[-1]
            start = self._start(version)
            if start >= len(version.body) > 0:
                record["status"] = 416
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(version.body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            record["status"] = 206 if start else 200
            self.send_response(record["status"])
            self._headers(version, start)
            try:
                for offset in range(start, len(version.body), PIECE):
                    piece = version.body[offset : offset + PIECE]
                    self.wfile.write(piece)
                    record["sent"] += len(piece)
                    if version.bytes_per_second:
                        time.sleep(len(piece) / version.bytes_per_second)
            except OSError:
                pass  # the fetcher hung up: its delivery's budget ran out, or it refused us

        def _start(self, version: Version) -> int:
            wanted = _start(self.headers["Range"])
            if wanted is None or not version.ranges:
                return 0
            if version.if_range and self.headers["If-Range"] not in (None, version.etag):
                return 0
            return wanted

        def _headers(self, version: Version, start: int) -> None:
            size = len(version.body)
            if version.etag is not None:
                self.send_header("ETag", version.etag)
                self.send_header("Last-Modified", "Tue, 01 Dec 2026 10:00:00 GMT")
            self.send_header("Content-Type", "audio/wav")
            if start:
                self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
            if version.declared is not None:
                declared = size - start if version.declared < 0 else version.declared
                self.send_header("Content-Length", str(declared))
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    return Handler


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="module")
def fetch_stack(log_dir: Path, ca: trustme.CA) -> Iterator[Stack]:
    """A stack whose deliveries last 2 s, with 256 KiB pieces, a 16 MiB source limit, and the
    test server's name pinned to loopback and its CA trusted (both for local stacks only)."""
    ca_file = log_dir / "sources-ca.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    stack = start_stack(
        log_dir / "downloads",
        LONGRUN_STAGE_TIME_BUDGET_SECONDS="2",
        LONGRUN_FETCH_CHUNK_BYTES=str(CHUNK),
        LONGRUN_MAX_SOURCE_BYTES=str(LIMIT),
        LONGRUN_SOURCE_HOST_ADDRESSES=f'{{"{HOST}": "127.0.0.1"}}',
        LONGRUN_SOURCE_CA_FILE=str(ca_file),
    )
    yield stack
    stack.stop()


@pytest.fixture
def watcher(db: firestore.Client, fetch_stack: Stack) -> Iterator[JobsWatcher]:
    watching = JobsWatcher.start(db, fetch_stack.settings)
    yield watching
    watching.stop()


@pytest.fixture
def serve(ca: trustme.CA) -> Iterator[Callable[[Source], str]]:
    """Serve a Source at an https:// URL on HOST; the servers stop after the test."""
    with contextlib.ExitStack() as servers:

        def start(source: Source) -> str:
            port, _ = servers.enter_context(serve_tls(handler_for(source), ca, HOST))
            return f"https://{HOST}:{port}/vod.wav"

        yield start


def fetched(stack: Stack, watcher: JobsWatcher, url: str) -> tuple[str, Job]:
    """Submit a media job for `url`; its id and its first version whose fetch has ended."""
    with stack.api() as api:
        job_id = submit_media(api, source=url)

    def fetch_ended(job: Job) -> bool:
        return job.stages[0].status in (StageStatus.SUCCEEDED, StageStatus.FAILED)

    return job_id, watcher.wait_for(job_id, fetch_ended, timeout=90)


def stored(stack: Stack, job_id: str) -> bytes:
    storage = Storage(stack.settings)
    data: bytes = storage.bucket.blob(f"jobs/{job_id}/source.wav").download_as_bytes()
    return data


def deliveries(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    return log_lines(stack, job_id, "source bytes fetched in this delivery")


def restarts(stack: Stack, job_id: str) -> list[str]:
    """Why the download of the job's source started over, each time it did."""
    lines = processor_log_lines(stack)
    return [
        line["message"]
        for line in lines
        if line.get("job_id") == job_id and line["message"].startswith("the download starts over")
    ]


def test_a_slow_source_is_fetched_over_several_deliveries_each_taking_up_where_the_last_left(
    fetch_stack: Stack, watcher: JobsWatcher, db: firestore.Client, serve: Callable[[Source], str]
) -> None:
    body = media(5 * 1024 * 1024, seed=1)
    slow = Version(body, '"v1"', bytes_per_second=1024 * 1024)
    source = Source(first=slow, later=slow)

    job_id, job = fetched(fetch_stack, watcher, serve(source))

    assert job.stages[0].status == StageStatus.SUCCEEDED
    assert stored(fetch_stack, job_id) == body
    run = run_document(db, fetch_stack, job_id, "fetch")
    assert run["deliveries"] >= 3, "the 5 s download was split over several deliveries"
    assert run["attempts"] == 1, "continuations are not failed attempts"
    cut = deliveries(fetch_stack, job_id)
    assert len(cut) == len(source.requests) == run["deliveries"]
    assert source.range_starts() == [None] + [d["committed_to"] for d in cut[:-1]]
    assert all(r["if_range"] == '"v1"' and r["status"] == 206 for r in source.requests[1:])
    assert [d["committed_from"] for d in cut[1:]] == [d["committed_to"] for d in cut[:-1]]
    assert cut[-1]["committed_to"] == len(body)
    # Each cut loses at most what was read but not yet committed: under a piece or two.
    assert len(body) <= source.served_bytes <= len(body) + len(cut) * 2 * CHUNK
    assert sum(d["fetched_bytes"] for d in cut) <= source.served_bytes
    assert not restarts(fetch_stack, job_id)


def test_a_server_that_ignores_range_means_starting_over_and_still_ends_byte_identical(
    fetch_stack: Stack, watcher: JobsWatcher, serve: Callable[[Source], str]
) -> None:
    body = media(3 * 1024 * 1024, seed=2)
    source = Source(
        first=Version(body, '"v1"', bytes_per_second=512 * 1024, ranges=False),
        later=Version(body, '"v1"', ranges=False),
    )

    job_id, job = fetched(fetch_stack, watcher, serve(source))

    assert job.stages[0].status == StageStatus.SUCCEEDED
    assert stored(fetch_stack, job_id) == body
    assert source.range_starts()[0] is None
    assert source.range_starts()[1] is not None, "the second delivery asked for the rest"
    assert [r["status"] for r in source.requests] == [200, 200]
    assert len(restarts(fetch_stack, job_id)) == 1
    assert "whole file again" in restarts(fetch_stack, job_id)[0]


@pytest.mark.parametrize("honours_if_range", [True, False])
def test_a_source_that_changed_between_deliveries_is_fetched_again_from_zero(
    fetch_stack: Stack, watcher: JobsWatcher, serve: Callable[[Source], str], honours_if_range: bool
) -> None:
    before, after = media(3 * 1024 * 1024, seed=3), media(3 * 1024 * 1024, seed=4)
    source = Source(
        first=Version(before, '"before"', bytes_per_second=512 * 1024),
        later=Version(after, '"after"', if_range=honours_if_range),
    )

    job_id, job = fetched(fetch_stack, watcher, serve(source))

    assert job.stages[0].status == StageStatus.SUCCEEDED
    assert stored(fetch_stack, job_id) == after
    assert source.requests[1]["if_range"] == '"before"'
    if honours_if_range:  # the server itself answers with the whole new file
        assert [r["status"] for r in source.requests] == [200, 200]
    else:  # it sends the new file's tail: seen by its ETag, and asked for again from zero
        assert [r["status"] for r in source.requests] == [200, 206, 200]
        assert source.range_starts()[2] is None
    assert len(restarts(fetch_stack, job_id)) == 1
    assert "the source changed (etag" in restarts(fetch_stack, job_id)[0]


@pytest.mark.parametrize("declared", [LIMIT + 1, None], ids=["declared", "streamed"])
def test_a_source_over_the_limit_fails_the_job_once_with_the_size_error(
    fetch_stack: Stack,
    watcher: JobsWatcher,
    db: firestore.Client,
    serve: Callable[[Source], str],
    declared: int,
) -> None:
    big = Version(media(LIMIT + 2 * CHUNK, seed=5), '"big"', declared=declared)
    source = Source(first=big, later=big)

    job_id, job = fetched(fetch_stack, watcher, serve(source))
    final = watcher.wait_terminal(job_id)

    assert job.stages[0].status == StageStatus.FAILED
    assert final.error is not None
    assert final.error.code == "SOURCE_TOO_LARGE"
    assert final.error.retryable is False
    assert run_document(db, fetch_stack, job_id, "fetch")["attempts"] == 1
    cut = deliveries(fetch_stack, job_id)
    fetched_bytes = sum(d["fetched_bytes"] for d in cut)
    if declared is not None:  # refused by its headers, before its body was read
        assert fetched_bytes == 0
        assert len(source.requests) == 1
    else:  # refused once the count passed the limit, over however many deliveries
        assert LIMIT < fetched_bytes <= LIMIT + len(cut) * 2 * CHUNK
        assert cut[-1]["committed_to"] <= LIMIT
        assert not restarts(fetch_stack, job_id)


# The same mechanics one delivery at a time, without a stack: a Download on the Storage emulator.


class Cut(Exception):
    """A delivery's end, right after it saved a cursor."""


@pytest.fixture
def storage(emulator_hosts: dict[str, str]) -> Storage:
    made = Storage(Settings())
    made.ensure_bucket()
    return made


@pytest.fixture
def deliver(
    ca: trustme.CA, storage: Storage
) -> Callable[[str, Any], Awaitable[tuple[Artifact | None, Any]]]:
    """One delivery of a download of `url` from `cursor`, cut after its first saved cursor:
    what it stored (None if cut) and the cursor it leaves."""
    verify = ssl.create_default_context()
    ca.configure_trust(verify)
    name = f"jobs/{uuid.uuid4().hex}/source.wav"

    async def one(url: str, cursor: Any) -> tuple[Artifact | None, Any]:
        saved = [cursor]

        async def save(state: dict[str, Any]) -> None:
            saved.append(state)
            raise Cut

        download = Download(
            url,
            storage,
            name_for=lambda head: name,
            save=save,
            max_bytes=LIMIT,
            chunk_bytes=CHUNK,
            rules=AddressRules(pinned={HOST: ipaddress.ip_address("127.0.0.1")}),
            verify=verify,
        )
        try:
            return await download.run(cursor), saved[-1]
        except Cut:
            return None, saved[-1]

    return one


def held(storage: Storage, cursor: dict[str, Any]) -> int:
    """What the cursor's upload session holds (the piece in flight at a cut still lands)."""
    committed = storage.stream_status(cursor["session"])
    assert committed is not None
    assert committed.size_bytes >= cursor["offset"]
    return committed.size_bytes


async def test_a_source_without_validators_starts_over_each_delivery_then_gives_up(
    serve: Callable[[Source], str],
    deliver: Callable[[str, Any], Awaitable[tuple[Artifact | None, Any]]],
) -> None:
    anonymous = Version(media(8 * CHUNK, seed=6), etag=None)
    url = serve(Source(first=anonymous, later=anonymous))

    cursor: Any = None
    for _ in range(MAX_RESTARTS + 1):
        stored_now, cursor = await deliver(url, cursor)
        assert stored_now is None
    with pytest.raises(PermanentError) as refused:
        await deliver(url, cursor)

    assert refused.value.code == "SOURCE_NOT_RESUMABLE"
    assert cursor["restarts"] == MAX_RESTARTS


async def test_a_session_that_holds_every_byte_is_closed_without_asking_the_source_again(
    serve: Callable[[Source], str],
    deliver: Callable[[str, Any], Awaitable[tuple[Artifact | None, Any]]],
    storage: Storage,
) -> None:
    body = media(4 * CHUNK, seed=7)
    source = Source(first=Version(body, '"v1"'), later=Version(body, '"v1"'))
    url = serve(source)
    _, cursor = await deliver(url, None)  # cut after its first cursor
    for offset in range(held(storage, cursor), len(body), CHUNK):  # the rest went in, unclosed
        storage.stream_write(cursor["session"], offset, body[offset : offset + CHUNK], None)

    artifact, _ = await deliver(url, cursor)

    assert artifact is not None
    assert len(source.requests) == 1, "the second delivery asked only the upload session"
    assert storage.bucket.blob(cursor["object_name"]).download_as_bytes() == body


async def test_a_finished_upload_whose_delivery_ended_before_returning_is_found_whole(
    serve: Callable[[Source], str],
    deliver: Callable[[str, Any], Awaitable[tuple[Artifact | None, Any]]],
    storage: Storage,
) -> None:
    body = media(4 * CHUNK, seed=8)
    source = Source(first=Version(body, '"v1"'), later=Version(body, '"v1"'))
    url = serve(source)
    _, cursor = await deliver(url, None)
    offset = held(storage, cursor)
    storage.stream_write(cursor["session"], offset, body[offset:], len(body))  # and closed

    artifact, _ = await deliver(url, cursor)

    assert artifact is not None
    assert artifact.size_bytes == len(body)
    assert len(source.requests) == 1


async def test_a_session_holding_a_source_of_unknown_size_whole_is_closed_on_a_416(
    serve: Callable[[Source], str],
    deliver: Callable[[str, Any], Awaitable[tuple[Artifact | None, Any]]],
    storage: Storage,
) -> None:
    body = media(4 * CHUNK, seed=9)
    undeclared = Version(body, '"v1"', declared=None)
    source = Source(first=undeclared, later=undeclared)
    url = serve(source)
    _, cursor = await deliver(url, None)
    for offset in range(held(storage, cursor), len(body), CHUNK):
        storage.stream_write(cursor["session"], offset, body[offset : offset + CHUNK], None)

    artifact, _ = await deliver(url, cursor)

    assert artifact is not None
    assert [r["status"] for r in source.requests] == [200, 416]
    assert storage.bucket.blob(cursor["object_name"]).download_as_bytes() == body


def test_a_download_outlasting_the_largest_time_budget_goes_on_instead_of_timing_out() -> None:
    # A delivery whose budget runs out while its stage's own limit has not hands a checkpointed
    # download on to the next delivery; at or below the budget it would end in STAGE_TIMEOUT.
    field = Settings.model_fields["stage_time_budget_seconds"]
    largest_budget = next(m.le for m in field.metadata if isinstance(m, Le))
    fetch = next(stage for stage in STAGES if stage.name == "fetch")
    assert fetch.timeout_seconds > 10 * float(largest_budget)
