"""Submitting jobs, reading their state, cancelling and retrying them."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Response, status
from fastapi.responses import RedirectResponse, StreamingResponse
from pydantic import BaseModel
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.concurrency import iterate_in_threadpool

from jobs.cloud.storage import CHUNK_BYTES
from jobs.cloud.store import JobStore, expired
from jobs.contract.errors import NotFound
from jobs.contract.models import Artifact, Job, JobRequest, JobStatus, is_job_id
from service.auth import UserDep
from service.control import CancelOutcome, cancel_job, retry_job
from service.deps import (
    IdempotencyKeysDep,
    ListenerDep,
    PublisherDep,
    QuotasDep,
    SettingsDep,
    StorageDep,
    StoreDep,
)
from service.events import job_changes
from service.idempotency import IN_USE_RESPONSE, IdempotencyKey, run_once
from service.openapi import AUTHENTICATED, problem, problems
from service.submission import submit_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"], responses=AUTHENTICATED)

_TOO_MANY = problem(
    429,
    "A per-user limit is reached: `HOURLY_LIMIT` (jobs started in the last hour) or "
    "`CONCURRENCY_LIMIT` (jobs queued or running at once); `Retry-After` says when to try again.",
)
_REPEATED: dict[str, Any] = {
    "model": Job,
    "description": "A repeat (same `Idempotency-Key` and body): the job the first request "
    "started, as it is now.",
}
# What `Retry-After` suggests to pollers of a running job; a listener or SSE needs no polling.
POLL_SECONDS = 2
HEARTBEAT_SECONDS = 15


class JobPage(BaseModel):
    jobs: list[Job]
    next_cursor: str | None


class ArtifactLink(BaseModel):
    """Where to read an artifact without credentials, for as long as the link lasts."""

    url: str
    content_type: str
    size_bytes: int
    expires_in_seconds: int


def _checked(job_id: str) -> str:
    """A path id that could name a job; anything else is as unknown as a missing job."""
    if not is_job_id(job_id):
        raise NotFound(f"No job {job_id!r}.", code="JOB_NOT_FOUND")
    return job_id


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        200: _REPEATED,
        **problems(400, 422),
        409: IN_USE_RESPONSE,
        429: _TOO_MANY,
    },
)
async def create_job(
    request: JobRequest,
    response: Response,
    user: UserDep,
    store: StoreDep,
    publisher: PublisherDep,
    settings: SettingsDep,
    quotas: QuotasDep,
    keys: IdempotencyKeysDep,
    idempotency_key: IdempotencyKey = None,
) -> Job:
    """Start a job: it is recorded as `queued` and its first stage is published at once.

    Each user may start `jobs_per_hour` jobs in any hour and have `active_jobs_per_user` queued
    or running at once; past either, 429 with `Retry-After`."""

    async def make(job_id: str | None) -> Job:
        return await submit_job(
            request, owner=user, store=store, publisher=publisher, settings=settings,
            quotas=quotas, job_id=job_id,
        )  # fmt: skip

    async def find(job_id: str, _: object) -> Job | None:
        return await store.get(job_id)

    if idempotency_key is None:
        job, repeat = await make(None), False
    else:
        job, repeat = await run_once(
            keys, idempotency_key, scope="jobs", owner=user, body=request,
            resource_id=store.new_job_id(), make=make, find=find,
        )  # fmt: skip
    response.headers["Location"] = f"/v1/jobs/{job.job_id}"
    if repeat:
        response.status_code = status.HTTP_200_OK
    return job


async def _owned_job(job_id: str, user: str, store: JobStore) -> Job:
    job: Job | None = await store.get(_checked(job_id))
    if job is None or job.owner != user or expired(job.expire_at):
        raise NotFound(f"No job {job_id!r}.", code="JOB_NOT_FOUND")
    return job


@router.get("", responses=problems(422))
async def list_jobs(
    user: UserDep,
    store: StoreDep,
    status_filter: Annotated[JobStatus | None, Query(alias="status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> JobPage:
    """The caller's jobs, newest first; pass `next_cursor` back as `cursor` for the next page."""
    jobs, next_cursor = await store.list_jobs(user, status_filter, limit, cursor)
    return JobPage(jobs=jobs, next_cursor=next_cursor)


@router.get(
    "/{job_id}",
    responses={304: {"description": "Not modified since the ETag given."}, **problems(404)},
)
async def get_job(
    job_id: str,
    response: Response,
    user: UserDep,
    store: StoreDep,
    if_none_match: Annotated[str | None, Header()] = None,
) -> Any:
    """The job document: status, progress, stages, result, artifacts and error.

    The `ETag` is the document's version: send it back in `If-None-Match` to get a bodyless
    `304` while nothing changed. `Retry-After` suggests when to poll again while the job runs.
    """
    job = await _owned_job(job_id, user, store)
    etag = f'"{job.version}"'
    headers = {"ETag": etag, "Cache-Control": "no-cache"}
    if not job.status.terminal:
        headers["Retry-After"] = str(POLL_SECONDS)
    if if_none_match is not None and etag in [t.strip() for t in if_none_match.split(",")]:
        return Response(status_code=status.HTTP_304_NOT_MODIFIED, headers=headers)
    response.headers.update(headers)
    return job


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={200: {"content": {"text/event-stream": {}}}, **problems(404)},
)
async def job_events(
    job_id: str, user: UserDep, store: StoreDep, listener: ListenerDep
) -> EventSourceResponse:
    """Server-Sent Events: a `job` event (id = version) on every change, the current state at
    once (also on reconnect with `Last-Event-ID`), a heartbeat every 15 s, and the end of the
    stream after the terminal event."""
    await _owned_job(job_id, user, store)

    async def events() -> AsyncIterator[ServerSentEvent]:
        async for job in job_changes(listener, store, job_id):
            if job is None:
                return
            yield ServerSentEvent(job.model_dump_json(), event="job", id=str(job.version))
            if job.status.terminal:
                return

    return EventSourceResponse(events(), ping=HEARTBEAT_SECONDS)


@router.get(
    "/{job_id}/artifacts/{name}",
    status_code=status.HTTP_307_TEMPORARY_REDIRECT,
    responses={200: {"description": "The artifact (local stack only)."}, **problems(404)},
)
async def download_artifact(
    job_id: str, name: str, user: UserDep, store: StoreDep, storage: StorageDep
) -> Response:
    """Download an artifact: a redirect to a short-lived signed URL (locally, the bytes)."""
    artifact = await _artifact(job_id, name, user, store)
    url = await asyncio.to_thread(storage.download_url, artifact.uri)
    if url is not None:
        return RedirectResponse(url, status_code=status.HTTP_307_TEMPORARY_REDIRECT)
    # The emulator cannot sign URLs: stream the object through the service instead.
    reader = await asyncio.to_thread(storage.open_read, artifact.uri)
    return StreamingResponse(
        iterate_in_threadpool(iter(lambda: reader.read(CHUNK_BYTES), b"")),
        media_type=artifact.content_type,
        headers={"Content-Length": str(artifact.size_bytes)},
        background=BackgroundTask(reader.close),
    )


@router.get("/{job_id}/artifacts/{name}/link", responses=problems(404))
async def artifact_link(
    job_id: str,
    name: str,
    user: UserDep,
    store: StoreDep,
    storage: StorageDep,
    settings: SettingsDep,
) -> ArtifactLink:
    """A short-lived signed URL to an artifact, for what cannot send a token: a page's video or
    audio element plays the job's recording (`source.*`) from it, seeking with range requests."""
    artifact = await _artifact(job_id, name, user, store)
    url = await asyncio.to_thread(storage.signed_url, artifact.uri)
    return ArtifactLink(
        url=url,
        content_type=artifact.content_type,
        size_bytes=artifact.size_bytes,
        expires_in_seconds=settings.download_url_seconds,
    )


async def _artifact(job_id: str, name: str, user: str, store: JobStore) -> Artifact:
    job = await _owned_job(job_id, user, store)
    artifact = job.artifacts.get(name)
    if artifact is None:
        raise NotFound(f"Job {job_id!r} has no artifact {name!r}.", code="ARTIFACT_NOT_FOUND")
    return artifact


@router.post(
    "/{job_id}/cancel",
    responses={202: {"model": Job}, **problems(404, 409)},
)
async def cancel(
    job_id: str,
    response: Response,
    user: UserDep,
    store: StoreDep,
    publisher: PublisherDep,
    quotas: QuotasDep,
) -> Job:
    """Cancel a job: at once (200) if no stage is running, else the running stage stops at its
    next check (202, `cancel_requested`). Cancelling a cancelled job is harmless; a job that
    succeeded or failed cannot be cancelled (409)."""
    job, outcome = await cancel_job(store, publisher, quotas, _checked(job_id), user)
    if outcome == CancelOutcome.REQUESTED:
        response.status_code = status.HTTP_202_ACCEPTED
    return job


@router.post(
    "/{job_id}/retry",
    status_code=status.HTTP_202_ACCEPTED,
    responses={**problems(404, 409, 422), 429: _TOO_MANY},
)
async def retry(
    job_id: str, user: UserDep, store: StoreDep, publisher: PublisherDep, quotas: QuotasDep
) -> Job:
    """Run a failed job again from its first stage that did not succeed (409 if not failed;
    422 BUDGET_EXCEEDED if it already spent past its budget). The job is queued again, so it
    counts towards the jobs a user may have active (429)."""
    async with quotas.admitted(user, _checked(job_id), again=True):
        return await retry_job(store, publisher, job_id, user)
