"""Firestore access for job documents and their internal stage runs."""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from google.cloud import firestore
from google.cloud.firestore import FieldFilter

from jobs.backend import Deadline
from jobs.errors import InvalidRequest
from jobs.models import Job, JobStatus, is_job_id, utcnow
from jobs.settings import Settings
from jobs.uploads import Upload

RUNS = "runs"


def firestore_client(settings: Settings) -> firestore.AsyncClient:
    """The async Firestore client; it finds the emulator through FIRESTORE_EMULATOR_HOST."""
    return firestore.AsyncClient(project=settings.project_id)


def job_to_document(job: Job) -> dict[str, Any]:
    """A job as Firestore stores it: native timestamps, enums as their string values."""
    return job.model_dump(mode="python")


def job_from_document(data: dict[str, Any]) -> Job:
    return Job.model_validate(data)


def with_fields(job: Job, fields: dict[str, Any]) -> Job:
    """The job as its document reads once `fields` (a transition's) are written to it."""
    return job_from_document({**job_to_document(job), **fields})


def expired(expire_at: datetime) -> bool:
    """Whether a document's `expire_at` has passed: it is gone for clients from then on, though
    Firestore's TTL deletion may take a day or more to remove it."""
    return expire_at <= utcnow()


def stamped(fields: dict[str, Any]) -> dict[str, Any]:
    """Fields plus what every write to a job document carries: a new version and updated_at."""
    return {**fields, "version": firestore.Increment(1), "updated_at": utcnow()}


class JobStore:
    """Reads and writes `jobs/{job_id}` and `jobs/{job_id}/runs/{stage}`."""

    def __init__(self, client: firestore.AsyncClient, settings: Settings) -> None:
        self.client = client
        self.deadline = Deadline(settings.backend_timeout_seconds)
        self.jobs = client.collection(settings.jobs_collection)
        self.uploads = client.collection(settings.uploads_collection)

    def new_job_id(self) -> str:
        """A Firestore auto-id, made on the client so the id is known before the write."""
        return str(self.jobs.document().id)

    def job_ref(self, job_id: str) -> firestore.AsyncDocumentReference:
        ref: firestore.AsyncDocumentReference = self.jobs.document(job_id)
        return ref

    def run_ref(self, job_id: str, stage: str) -> firestore.AsyncDocumentReference:
        ref: firestore.AsyncDocumentReference = (
            self.job_ref(job_id).collection(RUNS).document(stage)
        )
        return ref

    async def create(self, job: Job) -> None:
        """Write a new job; fails if the id is taken, so a repeated create never overwrites."""
        with self.deadline.unavailable():
            await self.job_ref(job.job_id).create(job_to_document(job), **self.deadline.options())

    async def get(self, job_id: str) -> Job | None:
        with self.deadline.unavailable():
            snapshot = await self.job_ref(job_id).get(**self.deadline.options())
        if not snapshot.exists:
            return None
        return job_from_document(snapshot.to_dict() or {})

    async def update(self, job_id: str, fields: dict[str, Any]) -> None:
        """Update some fields of a job document, bumping its version."""
        with self.deadline.unavailable():
            await self.job_ref(job_id).update(stamped(fields), **self.deadline.options())

    async def list_jobs(
        self, owner: str, status: JobStatus | None, limit: int, cursor: str | None
    ) -> tuple[list[Job], str | None]:
        """One page of an owner's jobs, newest first, and the cursor of the next page. Expired
        jobs are left out, so a page may hold fewer than `limit`."""
        query = self.jobs.where(filter=FieldFilter("owner", "==", owner))
        if status is not None:
            query = query.where(filter=FieldFilter("status", "==", status.value))
        query = query.order_by("created_at", direction=firestore.Query.DESCENDING)
        with self.deadline.unavailable():
            if cursor is not None:
                after = await self.job_ref(_decode_cursor(cursor)).get(**self.deadline.options())
                if not after.exists or after.get("owner") != owner:
                    raise InvalidRequest(
                        "The cursor is not valid.", code="BAD_CURSOR", field="cursor"
                    )
                query = query.start_after(after)
            page = query.limit(limit + 1).stream(**self.deadline.options())
            snapshots = [s async for s in page]
        jobs = [job_from_document(s.to_dict() or {}) for s in snapshots[:limit]]
        more = len(snapshots) > limit
        cursor = _encode_cursor(jobs[-1].job_id) if more and jobs else None
        return [job for job in jobs if not expired(job.expire_at)], cursor

    async def stage_outputs(self, job_id: str, stages: list[str]) -> dict[str, Any]:
        """The saved outputs of the named stages that have one."""
        if not stages:
            return {}
        refs = [self.run_ref(job_id, stage) for stage in stages]
        outputs: dict[str, Any] = {}
        found = self.client.get_all(refs, field_paths=["output"], **self.deadline.options())
        with self.deadline.unavailable():
            async for snapshot in found:
                if snapshot.exists and snapshot.get("output") is not None:
                    outputs[snapshot.reference.id] = snapshot.get("output")
        return outputs

    async def create_upload(self, upload: Upload) -> None:
        with self.deadline.unavailable():
            await self.uploads.document(upload.upload_id).create(
                upload.model_dump(), **self.deadline.options()
            )

    async def get_upload(self, upload_id: str, owner: str) -> Upload | None:
        """The caller's upload with this id; another user's is as absent as a missing one."""
        if not is_job_id(upload_id):
            return None
        with self.deadline.unavailable():
            snapshot = await self.uploads.document(upload_id).get(**self.deadline.options())
        if not snapshot.exists:
            return None
        upload = Upload.model_validate(snapshot.to_dict())
        return upload if upload.owner == owner and not expired(upload.expire_at) else None

    async def ping(self) -> None:
        """One cheap read, to prove Firestore answers."""
        with self.deadline.unavailable():
            await self.job_ref("_readyz").get(**self.deadline.options())


def _encode_cursor(job_id: str) -> str:
    return base64.urlsafe_b64encode(job_id.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str) -> str:
    try:
        job_id = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (ValueError, UnicodeDecodeError):
        job_id = ""
    if not is_job_id(job_id):
        raise InvalidRequest("The cursor is not valid.", code="BAD_CURSOR", field="cursor")
    return job_id
