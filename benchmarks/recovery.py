"""Recovery: a processor killed (SIGKILL) mid-stage; how long until the stage runs again.

Each round submits a one-stage job, kills the processor once the stage is under way, starts it
again at once (as Cloud Run or `longrun dev` would) and times from the kill to the stage's second
attempt starting. The stack has the shipped lease, heartbeat and retry policy, and a sweeper
called as `longrun dev` calls it.

    .venv/bin/python -m benchmarks.recovery --kills 10 --json benchmarks/out/recovery.json
"""

from __future__ import annotations

import argparse
import math
import signal
import statistics
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from benchmarks.environment import standalone
from deploy.local.ephemeral import Stack, start_stack
from deploy.local.stack import SWEEP_EVERY_SECONDS

WAIT_SECONDS = 300.0
# Long enough that no round's stage ends before its kill and its re-run.
STAGE = {"stages": 1, "work_units": 1200, "unit_seconds": 0.1}


def _stage_state(db: firestore.Client, stack: Stack, job_id: str) -> dict[str, Any]:
    job = db.collection(stack.settings.jobs_collection).document(job_id).get().to_dict() or {}
    stages: list[dict[str, Any]] = job.get("stages") or [{}]
    return stages[0]


def _wait(what: str, check: Any) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _sweeping(stack: Stack, stop: threading.Event) -> None:
    """Call the sweeper as the local stack does; a call to a processor being restarted fails."""
    while not stop.wait(SWEEP_EVERY_SECONDS):
        try:
            httpx.post(f"{stack.processor_url}/tasks/sweep", timeout=30)
        except httpx.HTTPError:
            continue


def one_kill(stack: Stack, db: firestore.Client, api: httpx.Client) -> float:
    """Seconds from killing the processor mid-stage to the stage's next attempt starting."""
    body = {"pipeline": "diagnostic", "input": STAGE}
    job_id: str = api.post("/v1/jobs", json=body).raise_for_status().json()["job_id"]
    _wait("the stage to run", lambda: _stage_state(db, stack, job_id).get("progress", 0) > 0.01)
    killed = time.monotonic()
    stack.processor.signal(signal.SIGKILL)
    assert stack.processor.process is not None
    stack.processor.process.wait(timeout=30)
    stack.start_processor()
    _wait("the stage to run again", lambda: _stage_state(db, stack, job_id).get("attempts") == 2)
    seconds = time.monotonic() - killed
    api.post(f"/v1/jobs/{job_id}/cancel").raise_for_status()
    return seconds


def run(log_dir: Path, kills: int) -> dict[str, Any]:
    stack = start_stack(
        log_dir / "recovery", LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:6]}"
    )
    db = firestore.Client(project=stack.settings.project_id)
    stop = threading.Event()
    sweeper = threading.Thread(target=_sweeping, args=(stack, stop), daemon=True)
    sweeper.start()
    try:
        with stack.api() as api:
            seconds = [one_kill(stack, db, api) for _ in range(kills)]
    finally:
        stop.set()
        sweeper.join()
        stack.stop()
    ordered = sorted(seconds)
    return {
        "kills": kills,
        "lease_seconds": stack.settings.lease_seconds,
        "heartbeat_seconds": stack.settings.heartbeat_seconds,
        "sweep_every_seconds": SWEEP_EVERY_SECONDS,
        "rerun_p50_seconds": round(statistics.median(ordered), 1),
        "rerun_p95_seconds": round(ordered[math.ceil(0.95 * len(ordered)) - 1], 1),
        "rerun_max_seconds": round(ordered[-1], 1),
        "rerun_seconds": [round(s, 1) for s in seconds],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    standalone("recovery", args.json, lambda work, _started: run(work, args.kills))


if __name__ == "__main__":
    main()
