"""The webhook contract: which callback URLs are accepted, what a callback receives, how it is
signed, and the Pub/Sub message that asks the processor to call it.

The body is a `JobSummary` as compact JSON. The signature is Stripe's scheme:
`Longrun-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed by
LONGRUN_WEBHOOK_SECRET>`; a receiver recomputes it over the raw body, compares in constant time,
and refuses a `t` too far from its own clock, so a captured call cannot be replayed later.
Processor/webhooks.py says how delivery is made durable.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from jobs.contract.errors import InvalidRequest
from jobs.contract.models import (
    ErrorInfo,
    Job,
    JobId,
    JobStatus,
    StageStatus,
)
from jobs.contract.sources import SourceNotAllowed, check_url_without_network

# A webhook message travels on the stages topic with this `kind` attribute.
KIND_ATTRIBUTE = "kind"
WEBHOOK_KIND = "webhook"

SIGNATURE_HEADER = "Longrun-Signature"
EVENT_HEADER = "Longrun-Event"
ID_HEADER = "Longrun-Webhook-Id"


class CallbackNotAllowed(InvalidRequest):
    code = "CALLBACK_NOT_ALLOWED"


class WebhooksNotConfigured(InvalidRequest):
    code = "WEBHOOKS_NOT_CONFIGURED"


def check_callback_url(url: str, allowed_hosts: Sequence[str] = ()) -> str:
    """The URL's host if a job may call it back: the rules of https:// media sources.

    `allowed_hosts` (tests and local receivers only) names hosts whose address is not checked.
    """
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if host in allowed_hosts and parts.scheme == "https" and not parts.username:
        return host
    try:
        return check_url_without_network(url)
    except SourceNotAllowed as exc:
        raise CallbackNotAllowed(
            f"The callback_url is not allowed: {exc.message}", field="callback_url"
        ) from None


class StageSummary(BaseModel):
    name: str
    status: StageStatus
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    error: ErrorInfo | None


class JobSummary(BaseModel):
    """What a job's callback receives once the job ends; new fields may be added, none removed."""

    event: str  # job.succeeded | job.failed | job.cancelled
    job_id: str
    pipeline: str
    status: JobStatus
    error: ErrorInfo | None
    result: dict[str, Any] | None
    artifacts: list[str]  # names; download each at /v1/jobs/{job_id}/artifacts/{name}
    stages: list[StageSummary]
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    cost_usd: float | None = None  # only present when the job carries a cost


def job_summary(job: Job) -> JobSummary:
    return JobSummary(
        event=f"job.{job.status.value}",
        job_id=job.job_id,
        pipeline=job.pipeline,
        status=job.status,
        error=job.error,
        result=job.result,
        artifacts=sorted(job.artifacts),
        stages=[StageSummary.model_validate(stage.model_dump()) for stage in job.stages],
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        cost_usd=getattr(job, "cost_usd", None),
    )


def summary_body(summary: JobSummary) -> bytes:
    """The exact bytes that are POSTed and signed."""
    exclude = {"cost_usd"} if summary.cost_usd is None else set()
    return summary.model_dump_json(exclude=exclude).encode()


def delivery_id(job: Job) -> str:
    """The same for every attempt at one terminal state, so receivers can drop repeats."""
    finished = job.finished_at.timestamp() if job.finished_at else 0.0
    return f"{job.job_id}.{job.status.value}.{int(finished * 1000)}"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The `Longrun-Signature` header value for `body` sent at `timestamp` (unix seconds)."""
    signed = f"{timestamp}.".encode() + body
    digest = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


class WebhookMessage(BaseModel):
    """The payload of a webhook message: call this job's callback with its summary."""

    model_config = ConfigDict(extra="ignore")

    job_id: JobId


def is_webhook_message(attributes: dict[str, str] | None) -> bool:
    return (attributes or {}).get(KIND_ATTRIBUTE) == WEBHOOK_KIND
