"""Overhead: how long longrun's machinery adds to a job that does no work of its own.

A diagnostic job of 5 stages with no work, from submit until a Firestore listener sees it
`succeeded`, against the floor: 5 rounds of push delivery, lease transaction, progress write and
publish made directly with the client libraries (benchmarks/floor_app.py), from its first
publish until the listener sees the chain done. Runs alternate so noise hits both alike.

    .venv/bin/python -m benchmarks.overhead --json benchmarks/out/overhead.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
import httpx
from google.cloud import firestore

from benchmarks.environment import standalone
from benchmarks.stats import ratio
from deploy.local.ephemeral import Stack, start_stack
from deploy.local.processes import ManagedProcess, free_port, wait_until_ready

STAGES = 5


def _wait_for(
    ref: firestore.DocumentReference, done: Callable[[dict[str, Any]], bool]
) -> threading.Event:
    """An event set when a listener on `ref` sees a version satisfying `done`."""
    seen = threading.Event()

    def on_snapshot(docs: list[Any], _changes: Any, _time: Any) -> None:
        if docs and docs[0].exists and done(docs[0].to_dict()):
            seen.set()

    watch = ref.on_snapshot(on_snapshot)
    seen.unsubscribe = watch.unsubscribe  # type: ignore[attr-defined]
    return seen


class Floor:
    """The floor chain: its own topic, push subscription and uvicorn process."""

    def __init__(self, stack: Stack, log_dir: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.collection = f"floor-{suffix}"
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        project = stack.settings.project_id
        self.topic = publisher.create_topic(name=f"projects/{project}/topics/floor-{suffix}").name
        port = free_port()
        subscriber.create_subscription(
            request={
                "name": f"projects/{project}/subscriptions/floor-{suffix}",
                "topic": self.topic,
                "push_config": {"push_endpoint": f"http://127.0.0.1:{port}/push"},
                "ack_deadline_seconds": 600,
            }
        )
        self.publisher = pubsub_v1.PublisherClient(
            batch_settings=pubsub_v1.types.BatchSettings(max_messages=1)
        )
        env = {**stack.env, "FLOOR_COLLECTION": self.collection, "FLOOR_TOPIC": self.topic}
        args = [sys.executable, "-m", "uvicorn", "benchmarks.floor_app:app", "--port", str(port)]
        self.process = ManagedProcess("floor", args, env=env, log_path=log_dir / "floor.log")
        self.process.start()
        # The floor app has no health route; any HTTP answer means it listens.
        wait_until_ready(f"http://127.0.0.1:{port}/push", self.process, 30, ok=(405,))

    def run_once(self, db: firestore.Client) -> float:
        ref = db.collection(self.collection).document()
        started = time.perf_counter()
        ref.create({"stage": 0, "progress": 0.0, "done": False})
        seen = _wait_for(ref, lambda doc: bool(doc.get("done")))
        data = json.dumps({"job_id": ref.id, "stage": 1, "stages": STAGES}).encode()
        self.publisher.publish(self.topic, data).result()
        seen.wait(60)
        elapsed = time.perf_counter() - started
        seen.unsubscribe()  # type: ignore[attr-defined]
        return elapsed


def run_longrun_once(stack: Stack, db: firestore.Client, api: httpx.Client) -> float:
    started = time.perf_counter()
    response = api.post(
        "/v1/jobs", json={"pipeline": "diagnostic", "input": {"stages": STAGES, "work_units": 0}}
    )
    job_id = response.raise_for_status().json()["job_id"]
    ref = db.collection(stack.settings.jobs_collection).document(job_id)
    seen = _wait_for(ref, lambda doc: doc.get("status") == "succeeded")
    seen.wait(60)
    elapsed = time.perf_counter() - started
    seen.unsubscribe()  # type: ignore[attr-defined]
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
                measured = (run_longrun_once(stack, db, api), floor.run_once(db))
                if index >= 2:  # the first rounds warm connections and caches
                    longrun_times.append(measured[0])
                    floor_times.append(measured[1])
    finally:
        floor.process.stop()
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
