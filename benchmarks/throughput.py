"""Throughput: how many small jobs longrun finishes a second against the floor, and whether
longrun or the emulators are what limits it.

Diagnostic jobs of 3 tiny stages are submitted as fast as they are taken on for a while, then
every one is waited for: on a stack of one processor process, then on one of a process per core.
The floor (benchmarks/floor.py) runs 3-push chains the same way, each push one lease transaction,
a progress write and a publish in a bare push endpoint, each chain started by creating its
document and publishing, as a submit does. The load is a closed loop: each client keeps at most
WINDOW jobs unfinished, because the API accepts jobs far faster (about 190 a second here) than a
processor finishes them, and an open flood would measure the length of the queue, not the
system. CPU time is read from /proc for longrun's processes (service and processors) and for the
emulators' (their Java processes), over the same span.

    .venv/bin/python -m benchmarks.throughput --seconds 60 --json benchmarks/out/throughput.json
"""

from __future__ import annotations

import argparse
import os
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from benchmarks.environment import process_group_cpu_seconds, standalone, wait_all_finished
from benchmarks.floor import Floor
from benchmarks.stats import ratio
from deploy.local.emulators import Emulator
from deploy.local.ephemeral import Stack, start_stack
from jobs.contract.models import JobStatus

STAGES = 3
JOB = {"pipeline": "diagnostic", "input": {"stages": STAGES, "work_units": 1, "unit_kib": 4}}
CLIENTS = 8
WINDOW = 4
WAIT_SECONDS = 600


def closed_loop(
    submit: Callable[[], str], ended: Callable[[list[str]], set[str]], seconds: float
) -> list[str]:
    """Every id `submit()` returned in `seconds` from CLIENTS clients, each keeping at most
    WINDOW unfinished (`ended(ids)` says which of its ids have finished)."""
    ids: list[str] = []
    lock = threading.Lock()
    deadline = time.monotonic() + seconds

    def client() -> None:
        unfinished: list[str] = []
        while time.monotonic() < deadline:
            if len(unfinished) >= WINDOW:
                done = ended(unfinished)
                unfinished = [i for i in unfinished if i not in done]
                if len(unfinished) >= WINDOW:
                    time.sleep(0.05)
                    continue
            made = submit()
            unfinished.append(made)
            with lock:
                ids.append(made)

    with ThreadPoolExecutor(CLIENTS) as pool:
        for future in [pool.submit(client) for _ in range(CLIENTS)]:
            future.result()
    return ids


def measure_longrun(
    log_dir: Path, seconds: float, emulators: list[Emulator], processors: int
) -> dict[str, Any]:
    """Jobs a second on a fresh stack of `processors` processor processes, and longrun's share of
    the CPU it and the emulators used meanwhile."""
    stack = start_stack(
        log_dir / f"throughput-{processors}",
        processors=processors,
        LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:6]}",
    )
    db = firestore.Client(project=stack.settings.project_id)
    jobs = db.collection(stack.settings.jobs_collection)
    local, clients = threading.local(), list[httpx.Client]()

    def submit() -> str:
        if not hasattr(local, "api"):  # one HTTP client (connection pool) per client thread
            local.api = httpx.Client(
                base_url=stack.api_url, timeout=60, headers=stack.auth_headers()
            )
            clients.append(local.api)
        job_id: str = local.api.post("/v1/jobs", json=JOB).raise_for_status().json()["job_id"]
        return job_id

    def ended(ids: list[str]) -> set[str]:
        docs = db.get_all([jobs.document(i) for i in ids])
        return {d.id for d in docs if JobStatus(d.get("status")).terminal}

    longrun = _longrun_pids(stack)

    def cpu() -> dict[str, float]:
        own = sum(process_group_cpu_seconds(pid) for pid in longrun)
        return {"longrun": own, "emulators": _emulator_cpu(emulators)}

    try:
        before, started = cpu(), time.perf_counter()
        ids = closed_loop(submit, ended, seconds)
        docs = wait_all_finished(db, stack.settings.jobs_collection, ids, timeout=WAIT_SECONDS)
        elapsed, after = time.perf_counter() - started, cpu()
    finally:
        for client in clients:
            client.close()
        stack.stop()
    used = {k: round(after[k] - before[k], 1) for k in after}
    succeeded = sum(d["status"] == JobStatus.SUCCEEDED for d in docs)
    total_cpu = sum(used.values()) or 1.0
    return {
        "processors": processors,
        "submitted": len(ids),
        "succeeded": succeeded,
        "lost": sum(not JobStatus(d["status"]).terminal for d in docs),
        "seconds": round(elapsed, 1),
        "jobs_per_second": round(succeeded / elapsed, 2),
        "cpu_seconds": used,
        "longrun_cpu_share": round(used["longrun"] / total_cpu, 2) if emulators else None,
        "emulator_cpu_seconds_per_job": _per_job(used["emulators"], len(ids)),
    }


def _per_job(cpu_seconds: float, jobs: int) -> float | None:
    return round(cpu_seconds / jobs, 3) if jobs else None


def _emulator_cpu(emulators: list[Emulator]) -> float:
    """CPU seconds the emulators' processes (their Java processes) have used so far."""
    return sum(process_group_cpu_seconds(e.process.pid) for e in emulators if e.process.pid)


def _longrun_pids(stack: Stack) -> list[int]:
    """The service's process and every processor process (and a fleet's front end)."""
    pids = [p.pid for p in (stack.service, stack.processor) if p.pid]
    return pids + [pid for pid in stack.processor_pids() if pid not in pids]


def measure_floor(log_dir: Path, seconds: float, emulators: list[Emulator]) -> dict[str, Any]:
    """Chains a second through the floor's one push endpoint, beside an idle stack (whose
    settings and emulators it shares), and the emulators' CPU per chain meanwhile."""
    stack = start_stack(log_dir / "throughput-floor")
    floor = Floor(stack, log_dir)
    db = firestore.Client(project=stack.settings.project_id)

    def submit() -> str:
        ref = floor.chain(db)
        floor.start(ref, STAGES)
        return str(ref.id)

    def ended(ids: list[str]) -> set[str]:
        docs = db.get_all([db.collection(floor.collection).document(i) for i in ids])
        return {d.id for d in docs if d.get("done")}

    try:
        cpu_before, started = _emulator_cpu(emulators), time.perf_counter()
        ids = closed_loop(submit, ended, seconds)
        deadline = time.monotonic() + WAIT_SECONDS
        left = set(ids)
        while left and time.monotonic() < deadline:
            left -= ended(sorted(left))
            time.sleep(0.25)
        elapsed, emulator_cpu = time.perf_counter() - started, _emulator_cpu(emulators) - cpu_before
    finally:
        floor.stop()
        stack.stop()
    finished = len(ids) - len(left)
    return {
        "submitted": len(ids),
        "finished": finished,
        "seconds": round(elapsed, 1),
        "jobs_per_second": round(finished / elapsed, 2),
        "emulator_cpu_seconds_per_job": _per_job(emulator_cpu, len(ids)),
    }


def run(log_dir: Path, seconds: float, emulators: list[Emulator]) -> dict[str, Any]:
    """One processor process, the floor, then a processor process per core."""
    one = measure_longrun(log_dir, seconds, emulators, processors=1)
    floor = measure_floor(log_dir, seconds, emulators)
    per_core = measure_longrun(log_dir, seconds, emulators, processors=os.cpu_count() or 1)
    return {
        **one,
        "floor": floor,
        "per_core": per_core,
        "ratio_one_process": ratio(one["jobs_per_second"], floor["jobs_per_second"]),
        "ratio_per_core": ratio(per_core["jobs_per_second"], floor["jobs_per_second"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    standalone("throughput", args.json, lambda work, started: run(work, args.seconds, started))


if __name__ == "__main__":
    main()
