"""Uploads: the client asks here, then sends its file straight to Cloud Storage."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Header, Response, status

from jobs.cloud.storage import Storage
from jobs.cloud.store import JobStore
from jobs.contract.errors import InvalidRequest
from jobs.contract.models import utcnow
from jobs.contract.settings import Settings
from jobs.contract.uploads import Upload, UploadRequest, UploadTicket
from service.auth import UserDep
from service.deps import IdempotencyKeysDep, SampleLockDep, SettingsDep, StorageDep, StoreDep
from service.idempotency import IN_USE_RESPONSE, IdempotencyKey, run_once
from service.openapi import AUTHENTICATED, problems
from service.sample import sample_uploads

router = APIRouter(prefix="/v1/uploads", tags=["uploads"], responses=AUTHENTICATED)

_REPEATED: dict[str, Any] = {
    "model": UploadTicket,
    "description": "A repeat (same `Idempotency-Key` and body): the first request's ticket.",
}


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    responses={200: _REPEATED, **problems(400, 422), 409: IN_USE_RESPONSE},
)
async def create_upload(
    request: UploadRequest,
    response: Response,
    user: UserDep,
    store: StoreDep,
    storage: StorageDep,
    settings: SettingsDep,
    keys: IdempotencyKeysDep,
    origin: Annotated[str | None, Header()] = None,
    idempotency_key: IdempotencyKey = None,
) -> UploadTicket:
    """Reserve an upload: size and type are checked first, then a resumable upload session is
    opened for exactly this file. PUT the bytes to `upload_url`, then submit a job with the
    `upload_id` as its source. Uploads do not count towards the job quotas."""

    async def make(upload_id: str) -> UploadTicket:
        return await _open_upload(request, upload_id, user, store, storage, settings, origin)

    async def find(_: str, ticket: dict[str, Any] | None) -> UploadTicket | None:
        return UploadTicket.model_validate(ticket) if ticket is not None else None

    if idempotency_key is None:
        return await make(store.new_job_id())
    ticket, repeat = await run_once(
        keys, idempotency_key, scope="uploads", owner=user, body=request,
        resource_id=store.new_job_id(), make=make, find=find, record=UploadTicket.model_dump,
    )  # fmt: skip
    if repeat:
        response.status_code = status.HTTP_200_OK
    return ticket


async def _open_upload(
    request: UploadRequest,
    upload_id: str,
    user: str,
    store: JobStore,
    storage: Storage,
    settings: Settings,
    origin: str | None,
) -> UploadTicket:
    if request.size_bytes > settings.max_source_bytes:
        raise InvalidRequest(
            f"The file is {request.size_bytes} bytes; the limit is {settings.max_source_bytes}.",
            code="UPLOAD_TOO_LARGE",
            field="size_bytes",
        )
    name = f"uploads/{upload_id}/{request.object_filename()}"
    url = await asyncio.to_thread(
        storage.upload_session, name, request.content_type, request.size_bytes, origin
    )
    now = utcnow()
    await store.create_upload(
        Upload(
            upload_id=upload_id,
            owner=user,
            filename=request.filename,
            content_type=request.content_type,
            size_bytes=request.size_bytes,
            uri=storage.uri(name),
            created_at=now,
            expire_at=now + timedelta(days=settings.job_ttl_days),
        )
    )
    return UploadTicket(
        upload_id=upload_id,
        upload_url=url,
        headers={"Content-Type": request.content_type},
        max_bytes=request.size_bytes,
    )


@router.post("/sample", status_code=status.HTTP_201_CREATED)
async def create_sample_uploads(
    user: UserDep,
    store: StoreDep,
    storage: StorageDep,
    settings: SettingsDep,
    lock: SampleLockDep,
) -> dict[str, str]:
    """Uploads of the demo recording (a 90 s video) and its chat log, as the caller's own:
    the answer is a ready `media-analysis` input (`source`, `chat`)."""
    return await sample_uploads(store, storage, settings, user, lock)
