"""`Idempotency-Key` on the POSTs that make something: a repeat gets what the first one made.

The key is claimed before any work, by `create()` on `idempotency_keys/{sha256(scope, owner,
key)}` holding a hash of the body and the id the new resource is going to have. Of many requests
with one key exactly one wins that create and does the work; the others read the claim and answer
with the same resource once it exists (waiting briefly for it), or 422 if their body differs.
A request that fails gives its key back, so trying again with the same key is not refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import Header
from google.api_core import exceptions
from google.cloud import firestore
from pydantic import BaseModel

from jobs.cloud.backend import OUTAGE, Deadline
from jobs.contract.errors import Conflict, InvalidRequest
from jobs.contract.models import utcnow
from jobs.contract.settings import Settings
from service.openapi import problem

log = logging.getLogger(__name__)

KEY_HEADER = "Idempotency-Key"
KEY_TTL = timedelta(hours=24)
# A claim this old whose resource was never made is abandoned (its request died): take it over.
ABANDONED_AFTER = timedelta(seconds=60)
# How long a repeat waits for the first request with its key to finish.
_WAIT_SECONDS = 10.0
_POLL_SECONDS = 0.1
Snapshot = firestore.DocumentSnapshot[firestore.AsyncDocumentReference]
_LOST_RACE = (exceptions.AlreadyExists, exceptions.FailedPrecondition, exceptions.NotFound)

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias=KEY_HEADER,
        min_length=1,
        max_length=255,
        pattern=r"^[!-~]+$",
        description=(
            "Any unique string (a UUID, say) of up to 255 visible ASCII characters. Within 24 h, "
            "a repeat with the same key and body returns what the first request made (200); "
            "the same key with another body is refused (422)."
        ),
    ),
]

# OpenAPI: the answer while the first request with a key is still being handled.
IN_USE_RESPONSE = problem(
    409,
    "`IDEMPOTENCY_KEY_IN_USE`: the first request with this key is still running.",
    retry_after=True,
)

T = TypeVar("T")
Find = Callable[[str, dict[str, Any] | None], Awaitable[Any]]


def body_hash(body: BaseModel) -> str:
    """A hash of what the body means, so key order and spacing do not make it another body."""
    canonical = json.dumps(body.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class Reservation:
    """This request holds the key: it makes the resource `resource_id`."""

    ref: firestore.AsyncDocumentReference
    resource_id: str
    update_time: datetime


@dataclass(frozen=True)
class Replay:
    """The key was used before with this body: `found` is what that request made."""

    found: Any


class IdempotencyKeys:
    """Claims keys in `idempotency_keys` and finds what earlier requests with them made."""

    def __init__(self, client: firestore.AsyncClient, settings: Settings) -> None:
        self._client = client
        self._keys = client.collection(settings.idempotency_collection)
        self._deadline = Deadline(settings.backend_timeout_seconds)

    async def reserve(
        self, scope: str, owner: str, key: str, body: str, resource_id: str, find: Find
    ) -> Reservation | Replay:
        """Claim the key for a new resource, or find what an earlier request with it made.

        `find(resource_id, response)` returns that resource, or None while it is not made yet.
        """
        with self._deadline.unavailable():
            return await self._reserve(scope, owner, key, body, resource_id, find)

    async def _reserve(
        self, scope: str, owner: str, key: str, body: str, resource_id: str, find: Find
    ) -> Reservation | Replay:
        ref = self._keys.document(_document_id(scope, owner, key))
        deadline = time.monotonic() + _WAIT_SECONDS
        while True:
            now = utcnow()
            fields = _claim_fields(owner, body, resource_id, now)
            try:
                written = await ref.create(fields, **self._deadline.options())
                return Reservation(ref, resource_id, written.update_time)
            except exceptions.AlreadyExists:
                pass
            snapshot = await ref.get(**self._deadline.options())
            if not snapshot.exists:
                continue  # its request gave it back meanwhile
            data = snapshot.to_dict() or {}
            if data["expire_at"] > now and data["body_hash"] != body:
                raise InvalidRequest(
                    f"This {KEY_HEADER} was used with another request body.",
                    code="IDEMPOTENCY_KEY_REUSED",
                )
            if data["expire_at"] > now:
                found = await find(data["resource_id"], data.get("response"))
                if found is not None:
                    return Replay(found)
            if data["expire_at"] <= now or data["created_at"] < now - ABANDONED_AFTER:
                taken = await self._take_over(snapshot, fields)
                if taken is not None:
                    return taken
                continue
            if time.monotonic() > deadline:
                raise Conflict(
                    f"A request with this {KEY_HEADER} is still being handled; try again.",
                    code="IDEMPOTENCY_KEY_IN_USE",
                    retry_after_seconds=1,
                )
            await asyncio.sleep(_POLL_SECONDS)

    async def _take_over(self, snapshot: Snapshot, fields: dict[str, Any]) -> Reservation | None:
        """Claim an expired or abandoned key, unless someone else does first."""
        option = self._client.write_option(last_update_time=snapshot.update_time)
        try:
            result = await snapshot.reference.update(
                {**fields, "response": firestore.DELETE_FIELD},
                option=option,
                **self._deadline.options(),
            )
        except _LOST_RACE:
            return None
        return Reservation(snapshot.reference, fields["resource_id"], result.update_time)

    async def complete(self, reservation: Reservation, response: dict[str, Any]) -> None:
        """Keep the response a repeat must get back (for resources that cannot be re-read)."""
        option = self._client.write_option(last_update_time=reservation.update_time)
        try:
            await reservation.ref.update(
                {"response": response}, option=option, **self._deadline.options()
            )
        except _LOST_RACE:
            log.warning("the idempotency key was taken over before its response was saved")
        except OUTAGE:
            log.warning("could not save the idempotency key's response", exc_info=True)

    async def abandon(self, reservation: Reservation) -> None:
        """Give the key back: the request failed, so a repeat must do the work again."""
        option = self._client.write_option(last_update_time=reservation.update_time)
        # A claim left behind is taken over once ABANDONED_AFTER has passed.
        with suppress(*_LOST_RACE, *OUTAGE):
            await reservation.ref.delete(option=option, **self._deadline.options())


async def run_once(
    keys: IdempotencyKeys,
    key: str,
    *,
    scope: str,
    owner: str,
    body: BaseModel,
    resource_id: str,
    make: Callable[[str], Awaitable[T]],
    find: Callable[[str, dict[str, Any] | None], Awaitable[T | None]],
    record: Callable[[T], dict[str, Any]] | None = None,
) -> tuple[T, bool]:
    """`make(resource_id)` once per key and body; a repeat gets `find`'s answer instead.

    Returns the resource and whether it was a repeat. `record` gives what to keep for `find`
    when the resource cannot be read back as it was first returned.
    """
    outcome = await keys.reserve(scope, owner, key, body_hash(body), resource_id, find)
    if isinstance(outcome, Replay):
        log.info("idempotent repeat answered", extra={"scope": scope, "owner": owner})
        found: T = outcome.found
        return found, True
    try:
        made = await make(outcome.resource_id)
    except BaseException:
        await keys.abandon(outcome)
        raise
    if record is not None:
        await keys.complete(outcome, record(made))
    return made, False


def _document_id(scope: str, owner: str, key: str) -> str:
    return hashlib.sha256(f"{scope}\0{owner}\0{key}".encode()).hexdigest()


def _claim_fields(owner: str, body: str, resource_id: str, now: datetime) -> dict[str, Any]:
    return {
        "owner": owner,
        "body_hash": body,
        "resource_id": resource_id,
        "created_at": now,
        "expire_at": now + KEY_TTL,  # Firestore TTL
    }
