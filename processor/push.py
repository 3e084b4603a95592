"""The Pub/Sub push endpoint: a thin adapter from HTTP to `run_stage` and back."""

from __future__ import annotations

import base64
import binascii
import logging
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Body, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from jobs.contract.models import StageMessage
from jobs.contract.webhooks import is_webhook_message
from jobs.telemetry import tracing
from jobs.telemetry.logs import log_context
from processor.deadletter import fail_undelivered
from processor.oidc import require_push_token
from processor.runner import run_stage
from processor.runtime import Outcome, Runtime, job_ended
from processor.webhooks import decode_webhook_message, deliver, give_up

log = logging.getLogger(__name__)

router = APIRouter(dependencies=[Depends(require_push_token)])

# Pub/Sub treats 102, 200, 201, 202 and 204 as an ack and anything else as a nack.
_STATUS = {
    Outcome.ACK: status.HTTP_204_NO_CONTENT,
    Outcome.BUSY: status.HTTP_429_TOO_MANY_REQUESTS,
    Outcome.RETRY: status.HTTP_503_SERVICE_UNAVAILABLE,
}


class PushMessage(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    data: str = ""
    attributes: dict[str, str] | None = None
    message_id: str = Field(alias="messageId")
    publish_time: str | None = Field(default=None, alias="publishTime")

    def published_at(self) -> datetime | None:
        """When Pub/Sub took the message; None if absent or unreadable (it only feeds logs)."""
        try:
            return datetime.fromisoformat(self.publish_time) if self.publish_time else None
        except ValueError:
            return None


class PushEnvelope(BaseModel):
    """The body Pub/Sub sends to a push endpoint."""

    message: PushMessage
    subscription: str


def decode_stage_message(message: PushMessage) -> StageMessage | None:
    """The stage message inside a push, or None if its payload can never be processed."""
    try:
        return StageMessage.model_validate_json(base64.b64decode(message.data, validate=True))
    except (binascii.Error, ValidationError, ValueError):
        return None


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _stage_message(envelope: PushEnvelope) -> StageMessage | None:
    stage_message = decode_stage_message(envelope.message)
    if stage_message is None:
        # Acknowledged: any other answer makes Pub/Sub deliver it again, forever.
        log.warning(
            "dropping a message whose payload is not a stage message",
            extra={"message_id": envelope.message.message_id},
        )
    return stage_message


async def _webhook(envelope: PushEnvelope, runtime: Runtime, *, dead: bool) -> None:
    message = decode_webhook_message(envelope.message.data)
    with log_context(message_id=envelope.message.message_id):
        if message is None:
            log.warning("dropping a webhook message whose payload is not one")
            return
        with (
            log_context(job_id=message.job_id),
            tracing.message_span("webhook", envelope.message.attributes, job_id=message.job_id),
        ):
            if dead:
                await give_up(runtime.store, runtime.settings, message.job_id)
            else:
                await deliver(runtime.store, runtime.settings, message.job_id)


@router.post(
    "/pubsub/push",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={400: {"description": "Not a Pub/Sub push envelope."}},
)
async def push(envelope: Annotated[PushEnvelope, Body()], request: Request) -> Response:
    """Run the one stage a Pub/Sub message names (or call a finished job's webhook); the status
    code acks or nacks the message."""
    if is_webhook_message(envelope.message.attributes):
        await _webhook(envelope, _runtime(request), dead=False)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    stage_message = _stage_message(envelope)
    if stage_message is None:
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    message = envelope.message
    with (
        log_context(message_id=message.message_id),
        tracing.message_span(
            f"stage {stage_message.stage}",
            message.attributes,
            job_id=stage_message.job_id,
            stage=stage_message.stage,
        ),
    ):
        outcome = await run_stage(stage_message, _runtime(request), message.published_at())
    return Response(status_code=_STATUS[outcome])


@router.post(
    "/pubsub/dead-letter",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={400: {"description": "Not a Pub/Sub push envelope."}},
)
async def dead_letter(envelope: Annotated[PushEnvelope, Body()], request: Request) -> Response:
    """A stage message Pub/Sub gave up on: fail its job unless the job no longer waits on it."""
    if is_webhook_message(envelope.message.attributes):
        await _webhook(envelope, _runtime(request), dead=True)
        return Response(status_code=status.HTTP_204_NO_CONTENT)
    stage_message = _stage_message(envelope)
    if stage_message is not None:
        with (
            log_context(message_id=envelope.message.message_id),
            tracing.message_span(
                f"dead letter {stage_message.stage}",
                envelope.message.attributes,
                job_id=stage_message.job_id,
                stage=stage_message.stage,
            ),
        ):
            runtime = _runtime(request)
            published_at = envelope.message.published_at()
            if failed := await fail_undelivered(runtime.store, stage_message, published_at):
                await job_ended(runtime, failed)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
