"""The floor chain that `overhead` and `throughput` measure longrun against: the least a
Pub/Sub-push stage chain can do with Google's clients (benchmarks/floor_app.py), on its own topic,
push subscription and uvicorn process beside a stack, on the same emulators."""

from __future__ import annotations

import json
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from deploy.local.processes import ManagedProcess, free_port, wait_until_ready
from deploy.local.topology import ensure_push


def wait_for(
    ref: firestore.DocumentReference, done: Callable[[dict[str, Any]], bool]
) -> threading.Event:
    """An event set when a listener on `ref` sees a version satisfying `done`; `seen.stop()`
    ends the listener."""
    seen = threading.Event()

    def on_snapshot(docs: list[Any], _changes: Any, _time: Any) -> None:
        if docs and docs[0].exists and done(docs[0].to_dict()):
            seen.set()

    watch = ref.on_snapshot(on_snapshot)
    seen.stop = watch.unsubscribe  # type: ignore[attr-defined]
    return seen


class Floor:
    """The floor chain: its own topic, push subscription and uvicorn process."""

    def __init__(self, stack: Stack, log_dir: Path) -> None:
        suffix = uuid.uuid4().hex[:8]
        self.collection = f"floor-{suffix}"
        publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
        project = stack.settings.project_id
        self.topic = publisher.create_topic(name=f"projects/{project}/topics/floor-{suffix}").name
        dead_letter = publisher.create_topic(name=f"{self.topic}-dead-letter").name
        port = free_port()
        # With longrun's retry and dead-letter policies: the Pub/Sub emulator pushes about half
        # as many messages a second to a subscription that has them (4.2 against 8.1 chains a
        # second measured here), so a floor without them would not be the same road.
        ensure_push(
            subscriber,
            project,
            f"floor-{suffix}",
            topic=self.topic,
            endpoint=f"http://127.0.0.1:{port}/push",
            dead_letter_topic=dead_letter,
            max_delivery_attempts=stack.settings.max_delivery_attempts,
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

    def chain(self, db: firestore.Client) -> firestore.DocumentReference:
        """A new chain's document (not created yet: watch it, then `start` it)."""
        return db.collection(self.collection).document()

    def start(self, ref: firestore.DocumentReference, stages: int) -> None:
        """Begin the chain `ref` of `stages` pushes, as submitting a job does: create its
        document and publish its first stage. The document's `done` turns true after the last."""
        ref.create({"stage": 0, "progress": 0.0, "done": False})
        data = json.dumps({"job_id": ref.id, "stage": 1, "stages": stages}).encode()
        self.publisher.publish(self.topic, data).result()

    def stop(self) -> None:
        self.process.stop()
