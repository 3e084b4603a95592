"""Submitting jobs and reading their state."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from jobs.errors import NotFound
from jobs.models import Job, JobRequest, is_job_id
from jobs.problems import Problem
from service.auth import UserDep
from service.deps import PublisherDep, SettingsDep, StoreDep
from service.submission import submit_job

router = APIRouter(prefix="/v1/jobs", tags=["jobs"])

_PROBLEM: dict[str, Any] = {"model": Problem, "content": {"application/problem+json": {}}}


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    responses={400: _PROBLEM, 422: _PROBLEM},
)
async def create_job(
    request: JobRequest,
    response: Response,
    user: UserDep,
    store: StoreDep,
    publisher: PublisherDep,
    settings: SettingsDep,
) -> Job:
    """Start a job: it is recorded as `queued` and its first stage is published at once."""
    job = await submit_job(request, owner=user, store=store, publisher=publisher, settings=settings)
    response.headers["Location"] = f"/v1/jobs/{job.job_id}"
    return job


@router.get("/{job_id}", responses={404: _PROBLEM})
async def get_job(job_id: str, user: UserDep, store: StoreDep) -> Job:
    """The job document: status, progress, stages, result, artifacts and error."""
    job = await store.get(job_id) if is_job_id(job_id) else None
    if job is None or job.owner != user:
        raise NotFound(f"No job {job_id!r}.", code="JOB_NOT_FOUND")
    return job
