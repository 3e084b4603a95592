"""Publishing stage messages to Pub/Sub."""

from __future__ import annotations

import asyncio
import logging

import grpc
from google.pubsub_v1 import PublisherAsyncClient, PubsubMessage
from google.pubsub_v1.services.publisher.transports import PublisherGrpcAsyncIOTransport
from opentelemetry.trace import SpanKind

from jobs.cloud.backend import Deadline
from jobs.contract.models import StageMessage
from jobs.contract.settings import Settings
from jobs.contract.webhooks import WebhookMessage
from jobs.telemetry import tracing

log = logging.getLogger(__name__)

# Publishes in flight at once when many messages are due together (a fan-out's items).
PUBLISH_CONCURRENCY = 32


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
        self._deadline = Deadline(settings.backend_timeout_seconds)
        self._topic = settings.stages_topic_path
        self._topic_name = settings.stages_topic

    async def publish(self, message: StageMessage | WebhookMessage, **attributes: str) -> str:
        """Publish and return the Pub/Sub message id (retried on transient errors until the
        backend deadline, then 503 BACKEND_UNAVAILABLE).

        The message carries the current trace context (`traceparent`) in its attributes, so
        the processor's span for the stage joins the trace of whatever published it.
        """
        data = message.model_dump_json(exclude_none=True).encode()
        what: dict[str, str | int] = {"job_id": message.job_id}
        stage = message.stage if isinstance(message, StageMessage) else None
        if isinstance(message, StageMessage):
            what["stage"] = message.stage
            if message.item is not None:
                what["item"] = message.item
        with tracing.tracer().start_as_current_span(
            f"publish {self._topic_name}",
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "gcp_pubsub",
                "messaging.destination.name": self._topic_name,
                **{f"longrun.{key}": value for key, value in what.items()},
            },
        ) as span:
            attributes = dict(attributes)
            tracing.inject(attributes)
            with self._deadline.unavailable():
                response = await self._client.publish(
                    topic=self._topic,
                    messages=[PubsubMessage(data=data, attributes=attributes)],
                    **self._deadline.options(),
                )
            message_id: str = response.message_ids[0]
            span.set_attribute("messaging.message.id", message_id)
            log.info(
                "stage published" if stage else "webhook published",
                extra={**what, "message_id": message_id},
            )
        return message_id

    async def publish_stage(self, job_id: str, stage: str) -> str:
        """Publish the message that runs `stage` of the job."""
        return await self.publish(StageMessage(job_id=job_id, stage=stage))

    async def publish_all(self, messages: list[StageMessage]) -> None:
        """Publish every message, at most PUBLISH_CONCURRENCY at a time; if any failed, raise
        the first failure once all were tried (each is a separate message, so a fan-out over
        hundreds of items is not one request that fails whole)."""
        gate = asyncio.Semaphore(PUBLISH_CONCURRENCY)

        async def one(message: StageMessage) -> str:
            async with gate:
                return await self.publish(message)

        outcomes = await asyncio.gather(*(one(m) for m in messages), return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome

    async def ping(self) -> None:
        """Prove Pub/Sub answers and the topic exists."""
        with self._deadline.unavailable():
            await self._client.get_topic(topic=self._topic, **self._deadline.options())

    async def close(self) -> None:
        await self._client.transport.close()  # type: ignore[no-untyped-call]


async def publish_or_defer(publisher: StagePublisher, job_id: str, stages: list[str]) -> None:
    """Publish stages of a job whose documents already say they are due; if a publish fails,
    log it and leave it to the sweeper, which re-publishes stages nobody picked up."""
    try:
        await publisher.publish_all([StageMessage(job_id=job_id, stage=s) for s in stages])
    except Exception:
        log.exception(
            "publishing a stage failed; the sweeper will publish it",
            extra={"job_id": job_id, "stages": stages},
        )
