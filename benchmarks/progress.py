"""Progress: a stage that reports 100,000 times writes its job document at most once a second,
and a listener still sees a new value at least once a second.

Writes are counted by the job's `version` (bumped by every write): from the stage's start to its
end, less those two transitions, is the number of progress writes.

    .venv/bin/python -m benchmarks.progress --json benchmarks/out/progress.json
"""

from __future__ import annotations

import argparse
import itertools
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from google.cloud import firestore

from benchmarks.environment import standalone
from deploy.local.ephemeral import start_stack

REPORTS = 100_000


def run(log_dir: Path) -> dict[str, Any]:
    stack = start_stack(
        log_dir / "progress", LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:6]}"
    )
    db = firestore.Client(project=stack.settings.project_id)
    seen: list[tuple[float, dict[str, Any]]] = []
    done = threading.Event()
    try:
        with stack.api() as api:
            body = {
                "pipeline": "diagnostic",
                "input": {"stages": 1, "work_units": REPORTS, "unit_kib": 1},
            }
            job_id = api.post("/v1/jobs", json=body).raise_for_status().json()["job_id"]

        def on_snapshot(docs: list[Any], _changes: Any, _time: Any) -> None:
            if docs and docs[0].exists:
                doc = docs[0].to_dict()
                seen.append((time.monotonic(), doc))
                if doc["status"] in ("succeeded", "failed"):
                    done.set()

        watch = (
            db.collection(stack.settings.jobs_collection).document(job_id).on_snapshot(on_snapshot)
        )
        done.wait(600)
        watch.unsubscribe()  # type: ignore[no-untyped-call]
    finally:
        stack.stop()
    running = [(t, d) for t, d in seen if d["status"] == "running"]
    final = seen[-1][1]
    stage = final["stages"][0]
    stage_seconds = (stage["finished_at"] - stage["started_at"]).total_seconds()
    first_version = min(d["version"] for _, d in running)
    writes = final["version"] - first_version - 1
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(running)]
    return {
        "progress_calls": REPORTS,
        "stage_seconds": round(stage_seconds, 1),
        "progress_writes": writes,
        "writes_per_second": round(writes / stage_seconds, 2),
        "listener_updates": len(running),
        "longest_gap_between_updates_seconds": round(max(gaps), 2) if gaps else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    standalone("progress", args.json, lambda work, _started: run(work))


if __name__ == "__main__":
    main()
