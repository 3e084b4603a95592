"""Throughput: how many small jobs a stack of one service and one processor finishes a second,
and whether longrun or the emulators are what limits it.

Diagnostic jobs of 3 tiny stages are submitted as fast as they are taken on for a while, then
every one is waited for. The load is a closed loop: each client keeps at most WINDOW jobs
unfinished, because the API accepts jobs far faster (about 190 a second here) than one processor
finishes them, and an open flood would measure the length of the queue, not the system. CPU time
is read from /proc for longrun's processes (service and processor) and for the emulators' (their
Java processes), over the same span.

    .venv/bin/python -m benchmarks.throughput --seconds 60 --json benchmarks/out/throughput.json
"""

from __future__ import annotations

import argparse
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from benchmarks.environment import process_group_cpu_seconds, standalone, wait_all_finished
from deploy.local.emulators import Emulator
from deploy.local.ephemeral import Stack, start_stack
from jobs.contract.models import JobStatus

JOB = {"pipeline": "diagnostic", "input": {"stages": 3, "work_units": 1, "unit_kib": 4}}
CLIENTS = 8
WINDOW = 4


def _submit_for(stack: Stack, db: firestore.Client, seconds: float) -> list[str]:
    ids: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds
    jobs = db.collection(stack.settings.jobs_collection)

    def client() -> None:
        unfinished: list[str] = []
        with httpx.Client(base_url=stack.api_url, timeout=60, headers=stack.auth_headers()) as api:
            while time.monotonic() < deadline:
                if len(unfinished) >= WINDOW:
                    docs = db.get_all([jobs.document(i) for i in unfinished])
                    ended = {d.id for d in docs if JobStatus(d.get("status")).terminal}
                    unfinished = [i for i in unfinished if i not in ended]
                    if len(unfinished) >= WINDOW:
                        time.sleep(0.05)
                        continue
                job_id = api.post("/v1/jobs", json=JOB).raise_for_status().json()["job_id"]
                unfinished.append(job_id)
                with lock:
                    ids.append(job_id)

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return ids


def run(log_dir: Path, seconds: float, emulators: list[Emulator]) -> dict[str, Any]:
    stack = start_stack(
        log_dir / "throughput", LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:6]}"
    )
    groups = {
        "longrun": [p.pid for p in (stack.service, stack.processor) if p.pid],
        "emulators": [e.process.pid for e in emulators if e.process.pid],
    }

    def cpu() -> dict[str, float]:
        return {k: sum(process_group_cpu_seconds(g) for g in v) for k, v in groups.items()}

    db = firestore.Client(project=stack.settings.project_id)
    try:
        before, started = cpu(), time.perf_counter()
        ids = _submit_for(stack, db, seconds)
        docs = wait_all_finished(db, stack.settings.jobs_collection, ids, timeout=600)
        elapsed, after = time.perf_counter() - started, cpu()
    finally:
        stack.stop()
    used = {k: round(after[k] - before[k], 1) for k in groups}
    succeeded = sum(d["status"] == JobStatus.SUCCEEDED for d in docs)
    total_cpu = sum(used.values()) or 1.0
    return {
        "submitted": len(ids),
        "succeeded": succeeded,
        "lost": sum(not JobStatus(d["status"]).terminal for d in docs),
        "seconds": round(elapsed, 1),
        "jobs_per_second": round(succeeded / elapsed, 1),
        "cpu_seconds": used,
        "longrun_cpu_share": round(used["longrun"] / total_cpu, 2) if emulators else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    standalone("throughput", args.json, lambda work, started: run(work, args.seconds, started))


if __name__ == "__main__":
    main()
