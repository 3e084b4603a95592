"""Publishing stage messages to Pub/Sub."""

from __future__ import annotations

import asyncio

import google.cloud.pubsub_v1 as pubsub_v1

from jobs.models import StageMessage
from jobs.settings import Settings


class StagePublisher:
    """Publishes one message per stage; each publish is awaited until Pub/Sub has it."""

    def __init__(self, settings: Settings) -> None:
        # Without this the client waits up to 10 ms per message to fill a batch; a submit
        # awaits its publish, so that wait would land on every request.
        batching = pubsub_v1.types.BatchSettings(max_messages=1)
        self._client = pubsub_v1.PublisherClient(batch_settings=batching)
        self._topic = settings.stages_topic_path

    async def publish(self, message: StageMessage, **attributes: str) -> str:
        """Publish and return the Pub/Sub message id."""
        data = message.model_dump_json().encode()
        future = self._client.publish(self._topic, data, **attributes)
        message_id: str = await asyncio.wrap_future(future)
        return message_id

    async def ping(self) -> None:
        """Prove Pub/Sub answers and the topic exists."""
        await asyncio.to_thread(self._client.get_topic, topic=self._topic, timeout=5)

    def close(self) -> None:
        self._client.stop()
