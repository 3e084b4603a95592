"""Fetch: an https:// source streamed into Storage over several deliveries; memory and bytes.

A local HTTPS server makes a source of the given size on the fly (so it holds none of it) and
serves it at a given rate to a stack whose delivery budget is short, as a 10 GB VOD would meet
the real 480 s budget. For each size: the deliveries it took, the bytes the server sent against
the file's size, the processor's peak resident memory while it fetched, and whether the stored
object is byte-identical (by SHA-256, read back in pieces).

    .venv/bin/python -m benchmarks.fetch --sizes-mib 64 512 --json benchmarks/out/fetch.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import ssl
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import trustme
from google.cloud import firestore

from benchmarks.environment import standalone
from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.storage import Storage

HOST = "vod.example"
MIB = 1024 * 1024
# The source repeats one random mebibyte that starts like a WAV file (the fetch sniffs it).
BLOCK = b"RIFF\x00\x00\x00\x00WAVE" + random.Random(0).randbytes(MIB - 12)
WAIT_SECONDS = 600.0


def _bytes(start: int, end: int) -> Iterator[bytes]:
    """The source's bytes start..end, in pieces of at most a mebibyte."""
    while start < end:
        at = start % MIB
        piece = BLOCK[at : min(MIB, at + end - start)]
        yield piece
        start += len(piece)


class _Served:
    def __init__(self, size: int, bytes_per_second: float) -> None:
        self.size = size
        self.bytes_per_second = bytes_per_second
        self.sent = 0
        self.ranges: list[str | None] = []
        self.lock = threading.Lock()


def _handler(served: _Served) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            wanted = self.headers["Range"]
            served.ranges.append(wanted)
            start = int(wanted.removeprefix("bytes=").removesuffix("-")) if wanted else 0
            self.send_response(206 if start else 200)
            self.send_header("ETag", '"bench"')
            self.send_header("Content-Length", str(served.size - start))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{served.size - 1}/{served.size}")
            self.end_headers()
            began = time.monotonic()
            sent = 0
            try:
                for piece in _bytes(start, served.size):
                    self.wfile.write(piece)
                    sent += len(piece)
                    with served.lock:
                        served.sent += len(piece)
                    ahead = sent / served.bytes_per_second - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)
            except OSError:
                pass  # the delivery ended: the fetcher hung up

        def log_message(self, *args: object) -> None:
            pass

    return Handler


def _rss_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def _stored_digest(stack: Stack, name: str) -> str:
    storage = Storage(stack.settings)
    digest = hashlib.sha256()
    with storage.open_read(storage.uri(name)) as reader:
        while piece := reader.read(8 * MIB):
            digest.update(piece)
    return digest.hexdigest()


def _fetch_status(db: firestore.Client, stack: Stack, job_id: str) -> str:
    job = db.collection(stack.settings.jobs_collection).document(job_id).get().to_dict() or {}
    stages: list[dict[str, Any]] = job.get("stages") or [{}]
    return str(stages[0].get("status", ""))


def measure(work: Path, size: int, bytes_per_second: float, budget: float) -> dict[str, Any]:
    ca = trustme.CA()
    ca_file = work / f"ca-{size}.pem"
    ca.cert_pem.write_to_path(str(ca_file))
    served = _Served(size, bytes_per_second)
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(served))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(HOST).configure_cert(context)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    stack = start_stack(
        work / f"fetch-{size}",
        LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:6]}",
        LONGRUN_STAGE_TIME_BUDGET_SECONDS=str(budget),
        LONGRUN_SOURCE_HOST_ADDRESSES=json.dumps({HOST: "127.0.0.1"}),
        LONGRUN_SOURCE_CA_FILE=str(ca_file),
    )
    try:
        return _run(stack, served, server.server_address[1], budget)
    finally:
        stack.stop()
        server.shutdown()
        server.server_close()


def _run(stack: Stack, served: _Served, port: int, budget: float) -> dict[str, Any]:
    db = firestore.Client(project=stack.settings.project_id)
    pid = stack.processor.pid
    assert pid is not None
    before = _rss_kib(pid, "VmRSS")
    with stack.api() as api:
        body = {"pipeline": "media-analysis", "input": {"source": f"https://{HOST}:{port}/v"}}
        job_id: str = api.post("/v1/jobs", json=body).raise_for_status().json()["job_id"]
    began, peak, samples = time.monotonic(), before, list[int]()
    while (status := _fetch_status(db, stack, job_id)) not in ("succeeded", "failed"):
        rss = _rss_kib(pid, "VmRSS")
        peak = max(peak, rss)
        if len(samples) < (time.monotonic() - began) / 2:  # one every 2 s
            samples.append(round(rss / 1024))
        if time.monotonic() - began > WAIT_SECONDS:
            raise TimeoutError("the fetch never ended")
        time.sleep(0.05)
    seconds = time.monotonic() - began
    with stack.api() as api:
        api.post(f"/v1/jobs/{job_id}/cancel")
    expected = hashlib.sha256()
    for piece in _bytes(0, served.size):
        expected.update(piece)
    return {
        "size_mib": served.size / MIB,
        "rate_mib_per_second": served.bytes_per_second / MIB,
        "budget_seconds": budget,
        "fetch": status,
        "seconds": round(seconds, 1),
        "deliveries": len(served.ranges),
        "range_starts_mib": [
            round(int(r.removeprefix("bytes=").removesuffix("-")) / MIB, 1) if r else 0
            for r in served.ranges
        ],
        "served_mib": round(served.sent / MIB, 1),
        "served_over_size": round(served.sent / served.size, 3),
        "processor_rss_before_mib": round(before / 1024, 1),
        "processor_rss_peak_mib": round(peak / 1024, 1),
        "processor_rss_growth_mib": round((peak - before) / 1024, 1),
        "processor_rss_every_2s_mib": samples,
        "identical": status == "succeeded"
        and _stored_digest(stack, f"jobs/{job_id}/source.wav") == expected.hexdigest(),
    }


def run(work: Path, sizes_mib: list[int], rate_mib: float, budget: float) -> list[dict[str, Any]]:
    return [measure(work, size * MIB, rate_mib * MIB, budget) for size in sizes_mib]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes-mib", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--rate-mib", type=float, default=32.0, help="the source's speed")
    parser.add_argument("--budget", type=float, default=5.0, help="seconds per delivery")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    standalone(
        "fetch", args.json, lambda work, _: run(work, args.sizes_mib, args.rate_mib, args.budget)
    )


if __name__ == "__main__":
    main()
