"""Uploads: the client asks here, then sends its file straight to Cloud Storage."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Header, status

from jobs.errors import InvalidRequest
from jobs.models import utcnow
from jobs.uploads import Upload, UploadRequest, UploadTicket
from service.auth import UserDep
from service.deps import SampleLockDep, SettingsDep, StorageDep, StoreDep
from service.openapi import AUTHENTICATED, problems
from service.sample import sample_uploads

router = APIRouter(prefix="/v1/uploads", tags=["uploads"], responses=AUTHENTICATED)


@router.post("", status_code=status.HTTP_201_CREATED, responses=problems(400, 422))
async def create_upload(
    request: UploadRequest,
    user: UserDep,
    store: StoreDep,
    storage: StorageDep,
    settings: SettingsDep,
    origin: Annotated[str | None, Header()] = None,
) -> UploadTicket:
    """Reserve an upload: size and type are checked first, then a resumable upload session is
    opened for exactly this file. PUT the bytes to `upload_url`, then submit a job with the
    `upload_id` as its source."""
    if request.size_bytes > settings.max_source_bytes:
        raise InvalidRequest(
            f"The file is {request.size_bytes} bytes; the limit is {settings.max_source_bytes}.",
            code="UPLOAD_TOO_LARGE",
            field="size_bytes",
        )
    upload_id = store.new_job_id()
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
