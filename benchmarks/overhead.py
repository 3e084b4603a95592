"""Overhead: how long longrun's machinery adds to a job that does no work of its own.

A diagnostic job of 5 stages with no work, from submit until a Firestore listener sees it
`succeeded`, against the floor: 5 rounds of push delivery, lease transaction, progress write and
publish made directly with the client libraries (benchmarks/floor_app.py), from its first
publish until the listener sees the chain done. Runs alternate so noise hits both alike.

    .venv/bin/python -m benchmarks.overhead --json benchmarks/out/overhead.json
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from benchmarks.environment import standalone
from benchmarks.floor import Floor, wait_for
from benchmarks.stats import ratio
from deploy.local.ephemeral import Stack, start_stack

STAGES = 5


def run_floor_once(floor: Floor, db: firestore.Client) -> float:
    started = time.perf_counter()
    ref = floor.chain(db)
    seen = wait_for(ref, lambda doc: bool(doc.get("done")))
    floor.start(ref, STAGES)
    seen.wait(60)
    elapsed = time.perf_counter() - started
    seen.stop()  # type: ignore[attr-defined]
    return elapsed


def run_longrun_once(stack: Stack, db: firestore.Client, api: httpx.Client) -> float:
    started = time.perf_counter()
    response = api.post(
        "/v1/jobs", json={"pipeline": "diagnostic", "input": {"stages": STAGES, "work_units": 0}}
    )
    job_id = response.raise_for_status().json()["job_id"]
    ref = db.collection(stack.settings.jobs_collection).document(job_id)
    seen = wait_for(ref, lambda doc: doc.get("status") == "succeeded")
    seen.wait(60)
    elapsed = time.perf_counter() - started
    seen.stop()  # type: ignore[attr-defined]
    return elapsed


def run(log_dir: Path, rounds: int) -> dict[str, Any]:
    stack = start_stack(
        log_dir / "overhead", LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:6]}"
    )
    floor = Floor(stack, log_dir)
    db = firestore.Client(project=stack.settings.project_id)
    longrun_times: list[float] = []
    floor_times: list[float] = []
    try:
        with stack.api() as api:
            for index in range(rounds + 2):
                measured = (run_longrun_once(stack, db, api), run_floor_once(floor, db))
                if index >= 2:  # the first rounds warm connections and caches
                    longrun_times.append(measured[0])
                    floor_times.append(measured[1])
    finally:
        floor.stop()
        stack.stop()
    longrun_ms = statistics.median(longrun_times) * 1000
    floor_ms = statistics.median(floor_times) * 1000
    return {
        "stages": STAGES,
        "rounds": rounds,
        "longrun_median_ms": round(longrun_ms, 1),
        "floor_median_ms": round(floor_ms, 1),
        "ratio": ratio(longrun_ms, floor_ms),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    standalone("overhead", args.json, lambda work, _started: run(work, args.rounds))


if __name__ == "__main__":
    main()
