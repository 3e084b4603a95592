"""The Pub/Sub topics and push subscriptions longrun needs, made idempotently.

The deploy scripts make the same shape in a real project with gcloud; this module makes it on the
emulator (and serves tests, which give each stack its own names).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from datetime import timedelta

import google.cloud.pubsub_v1 as pubsub_v1
from google.api_core.exceptions import AlreadyExists

from jobs.contract.settings import Settings

# A push request is also bounded by the ack deadline; 600 s is Pub/Sub's maximum.
ACK_DEADLINE_SECONDS = 600
# A crashed holder's message comes back answered "busy" until its lease runs out: a short
# backoff cap lets the first delivery after the lease retries the stage within seconds.
MAX_RETRY_BACKOFF_SECONDS = 10


@dataclass(frozen=True)
class Topology:
    settings: Settings
    push_endpoint: str
    dead_letter_endpoint: str

    @property
    def subscription(self) -> str:
        return f"{self.settings.stages_topic}-push"

    @property
    def dead_letter_subscription(self) -> str:
        return f"{self.settings.dead_letter_topic}-push"


def ensure_topology(topology: Topology) -> None:
    """Create (or repoint) the topics and push subscriptions; safe to run again."""
    settings = topology.settings
    publisher = pubsub_v1.PublisherClient()
    subscriber = pubsub_v1.SubscriberClient()
    try:
        for topic in (settings.stages_topic_path, settings.dead_letter_topic_path):
            with contextlib.suppress(AlreadyExists):
                publisher.create_topic(name=topic)
        ensure_push(
            subscriber,
            settings.project_id,
            topology.subscription,
            topic=settings.stages_topic_path,
            endpoint=topology.push_endpoint,
            dead_letter_topic=settings.dead_letter_topic_path,
            max_delivery_attempts=settings.max_delivery_attempts,
        )
        ensure_push(
            subscriber,
            settings.project_id,
            topology.dead_letter_subscription,
            topic=settings.dead_letter_topic_path,
            endpoint=topology.dead_letter_endpoint,
            dead_letter_topic=None,
            max_delivery_attempts=settings.max_delivery_attempts,
        )
    finally:
        subscriber.close()
        publisher.stop()


def ensure_push(
    subscriber: pubsub_v1.SubscriberClient,
    project: str,
    name: str,
    *,
    topic: str,
    endpoint: str,
    dead_letter_topic: str | None,
    max_delivery_attempts: int,
) -> None:
    """Create push subscription `name` as longrun's are made (ack deadline, retry backoff, and
    a dead-letter topic if given), or point it at `endpoint` if it exists."""
    path = subscriber.subscription_path(project, name)
    request: dict[str, object] = {
        "name": path,
        "topic": topic,
        "push_config": {"push_endpoint": endpoint},
        "ack_deadline_seconds": ACK_DEADLINE_SECONDS,
        "retry_policy": {
            "minimum_backoff": timedelta(seconds=1),
            "maximum_backoff": timedelta(seconds=MAX_RETRY_BACKOFF_SECONDS),
        },
    }
    if dead_letter_topic is not None:
        request["dead_letter_policy"] = {
            "dead_letter_topic": dead_letter_topic,
            "max_delivery_attempts": max_delivery_attempts,
        }
    try:
        subscriber.create_subscription(request=request)
    except AlreadyExists:
        subscriber.modify_push_config(
            request={"subscription": path, "push_config": {"push_endpoint": endpoint}}
        )
