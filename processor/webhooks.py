"""Calling a finished job's `callback_url`: signed, retried with backoff, recorded, durable.

How a webhook survives a crash anywhere, with no topic or subscription of its own:
1. The terminal transition (jobs/contract/transitions.py) writes `webhook: {status: pending}` in
   the same transaction as the job's terminal status: the promise to call is committed with the
   end.
2. Whoever wrote it (the stage runner, the dead-letter handler, the API's cancel) then publishes
   a webhook message on the stages topic: `{"job_id"}` with the attribute `kind=webhook`.
3. The push handler gives that message to `deliver`, which POSTs the job summary, retries
   network errors, timeouts, 5xx and 429 with exponential backoff inside the one push request,
   up to `webhook_max_attempts`, and records each attempt in the job's `webhook` field (and only
   there: the job's status never changes). The message is acknowledged once the webhook is
   delivered or has failed for good.
4. A crash during 3 leaves the message unacknowledged: Pub/Sub delivers it again and delivery
   goes on from the recorded attempt count. A crash between 1 and 2 loses the message: the
   sweeper re-publishes it for any job whose webhook stayed `pending` with no write for
   `sweep_stale_seconds`.

Retries wait inside the push request rather than nack the message, because nacks slow the whole
stages subscription and its backoff is tuned for stages; the wait is bounded (attempts x timeout
plus the backoff, about 80 s at the defaults), far inside the ack deadline. Delivery is at least
once: a receiver drops repeats by `Longrun-Webhook-Id`.

Connections use the media fetcher's address-checked requests (the host is resolved, every
address checked, the checked one connected to), and redirects are never followed: a callback
that answers 3xx has failed.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import ssl
import time
from dataclasses import dataclass

import certifi
import httpx
from pydantic import ValidationError

from jobs.cloud.store import Decision, JobStore
from jobs.contract.errors import PermanentError
from jobs.contract.models import Job, WebhookDelivery, WebhookStatus, utcnow
from jobs.contract.settings import Settings
from jobs.contract.sources import SourceNotAllowed
from jobs.contract.webhooks import (
    EVENT_HEADER,
    ID_HEADER,
    SIGNATURE_HEADER,
    CallbackNotAllowed,
    WebhookMessage,
    check_callback_url,
    delivery_id,
    job_summary,
    signature,
    summary_body,
)
from jobs.telemetry.logs import log_context
from processor.fetch import AddressRules, checked_request

log = logging.getLogger(__name__)

USER_AGENT = "longrun-webhooks/1"
_MAX_BACKOFF_SECONDS = 60.0
_MAX_ERROR_TEXT = 300


@dataclass(frozen=True)
class Attempt:
    """One try at calling a callback, or (counted False) a reason not to try at all."""

    status_code: int | None = None
    error: str | None = None
    retryable: bool = False
    counted: bool = True

    @property
    def ok(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def decode_webhook_message(data: str) -> WebhookMessage | None:
    """The webhook message in a push, or None if its payload can never be processed."""
    try:
        return WebhookMessage.model_validate_json(base64.b64decode(data, validate=True))
    except (binascii.Error, ValidationError, ValueError):
        return None


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """The wait before the next try after `attempts` failed ones: doubling, capped."""
    wait = settings.webhook_backoff_seconds * 2 ** max(0, attempts - 1)
    return float(min(wait, _MAX_BACKOFF_SECONDS))


def _due(job: Job | None) -> bool:
    return (
        job is not None
        and job.status.terminal
        and job.callback_url is not None
        and job.webhook is not None
        and job.webhook.status == WebhookStatus.PENDING
    )


async def deliver(store: JobStore, settings: Settings, job_id: str) -> WebhookDelivery | None:
    """Call the job's callback until it is delivered or has failed for good; the last record."""
    with log_context(job_id=job_id):
        job = await store.get(job_id)
        record = job.webhook if job else None
        while job is not None and _due(job):
            attempt = await call(job, settings)
            record = await record_attempt(store, settings, job_id, attempt)
            log.info(
                "webhook attempt: %s",
                record.status.value if record else "superseded",
                extra={"status_code": attempt.status_code, "error": attempt.error},
            )
            if record is None or record.status != WebhookStatus.PENDING:
                break
            await asyncio.sleep(backoff_seconds(settings, record.attempts))
            job = await store.get(job_id)
        return record


async def call(job: Job, settings: Settings) -> Attempt:
    """POST the job's signed summary to its callback once."""
    assert job.callback_url is not None
    if settings.webhook_secret is None:
        return Attempt(error="LONGRUN_WEBHOOK_SECRET is not set on the processor.", counted=False)
    body = summary_body(job_summary(job))
    secret = settings.webhook_secret.get_secret_value()
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        EVENT_HEADER: f"job.{job.status.value}",
        ID_HEADER: delivery_id(job),
    }
    timeout = settings.webhook_timeout_seconds
    try:
        async with httpx.AsyncClient(
            verify=_verify(settings), timeout=timeout, trust_env=False
        ) as client:
            rules = _rules(job.callback_url, settings)
            request = await checked_request(client, "POST", job.callback_url, rules, headers, body)
            response = await client.send(request, stream=True)
            await response.aclose()  # the receiver's body is not read: it could be anything
    except (SourceNotAllowed, CallbackNotAllowed) as exc:
        return Attempt(error=exc.message)
    except PermanentError as exc:  # the name did not resolve: DNS may recover
        return Attempt(error=exc.message, retryable=True)
    except httpx.TimeoutException:
        return Attempt(error=f"No answer within {timeout:g} s.", retryable=True)
    except httpx.TransportError as exc:
        text = f"{type(exc).__name__}: {exc}"[:_MAX_ERROR_TEXT]
        return Attempt(error=text, retryable=True)
    return _judged(response.status_code)


def _judged(status_code: int) -> Attempt:
    if 200 <= status_code < 300:
        return Attempt(status_code=status_code)
    if status_code == 429 or status_code >= 500:
        return Attempt(status_code, f"The callback answered {status_code}.", retryable=True)
    if 300 <= status_code < 400:
        return Attempt(status_code, "The callback redirected; redirects are not followed.")
    return Attempt(status_code, f"The callback answered {status_code}.")


def _rules(url: str, settings: Settings) -> AddressRules:
    allowed = tuple(settings.webhook_allowed_hosts)
    host = check_callback_url(url, allowed)
    if host in allowed:
        return AddressRules(check_url=lambda _: host, check_address=lambda _: None)
    return AddressRules(check_url=lambda checked: check_callback_url(checked, allowed))


def _verify(settings: Settings) -> ssl.SSLContext | bool:
    if settings.webhook_ca_file is None:
        return True
    context = ssl.create_default_context(cafile=certifi.where())
    context.load_verify_locations(cafile=str(settings.webhook_ca_file))
    return context


def next_record(record: WebhookDelivery, attempt: Attempt, max_attempts: int) -> WebhookDelivery:
    """The delivery record after `attempt`."""
    attempts = record.attempts + (1 if attempt.counted else 0)
    status = WebhookStatus.PENDING
    if attempt.ok:
        status = WebhookStatus.DELIVERED
    elif not attempt.retryable or attempts >= max_attempts:
        status = WebhookStatus.FAILED
    return WebhookDelivery(
        status=status,
        attempts=attempts,
        last_status_code=attempt.status_code,
        last_error=attempt.error,
        delivered_at=utcnow() if attempt.ok else None,
    )


def decide_record(
    job: Job | None, attempt: Attempt, max_attempts: int
) -> Decision[WebhookDelivery | None]:
    """The job with the attempt's outcome on its `webhook`, if that webhook is still due."""
    if job is None or job.webhook is None or not _due(job):
        return Decision(None)
    record = next_record(job.webhook, attempt, max_attempts)
    return Decision(record, job=job.model_copy(update={"webhook": record}))


async def record_attempt(
    store: JobStore, settings: Settings, job_id: str, attempt: Attempt
) -> WebhookDelivery | None:
    """Write the attempt's outcome to the job's `webhook` field, if that webhook is still due;
    None when it is not (delivered meanwhile, or the job was retried)."""
    limit = settings.webhook_max_attempts
    return await store.decide(job_id, lambda job, _runs: decide_record(job, attempt, limit))


async def give_up(store: JobStore, settings: Settings, job_id: str) -> None:
    """Pub/Sub gave up on a webhook message: its webhook, if still pending, has failed."""
    reason = "Pub/Sub gave up delivering the webhook message to a processor."
    with log_context(job_id=job_id):
        await record_attempt(store, settings, job_id, Attempt(error=reason, counted=False))
        log.warning("dead-lettered webhook message")
