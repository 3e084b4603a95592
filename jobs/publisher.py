"""Publishing stage messages to Pub/Sub."""

from __future__ import annotations

import grpc
from google.pubsub_v1 import PublisherAsyncClient, PubsubMessage
from google.pubsub_v1.services.publisher.transports import PublisherGrpcAsyncIOTransport
from pydantic import BaseModel

from jobs.settings import Settings


class StagePublisher:
    """Publishes one message per stage; each publish is awaited until Pub/Sub has it.

    It uses Google's async gapic client rather than the batching `PublisherClient`: a submit
    awaits its one message, and the batching client commits every message on a new thread of
    its own, which costs more than the publish itself when messages are not batched.
    Build it inside the running event loop (the app's lifespan): its gRPC channel binds to it.
    """

    def __init__(self, settings: Settings) -> None:
        if settings.pubsub_emulator_host:
            channel = grpc.aio.insecure_channel(settings.pubsub_emulator_host)
            transport = PublisherGrpcAsyncIOTransport(channel=channel)
            self._client = PublisherAsyncClient(transport=transport)
        else:
            self._client = PublisherAsyncClient()
        self._topic = settings.stages_topic_path

    async def publish(self, message: BaseModel, **attributes: str) -> str:
        """Publish and return the Pub/Sub message id (retried on transient errors)."""
        data = message.model_dump_json().encode()
        response = await self._client.publish(
            topic=self._topic,
            messages=[PubsubMessage(data=data, attributes=attributes)],
            timeout=30,
        )
        message_id: str = response.message_ids[0]
        return message_id

    async def ping(self) -> None:
        """Prove Pub/Sub answers and the topic exists."""
        await self._client.get_topic(topic=self._topic, timeout=5)

    async def close(self) -> None:
        await self._client.transport.close()  # type: ignore[no-untyped-call]
