"""Firestore access for job documents and their internal stage runs."""

from __future__ import annotations

import asyncio
import base64
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from google.api_core.exceptions import AlreadyExists, FailedPrecondition, NotFound
from google.cloud import firestore
from google.cloud.firestore import FieldFilter

from jobs.cloud.backend import Deadline
from jobs.cloud.memory import DocumentMemory, Remembered
from jobs.contract.errors import InvalidRequest, TransientError
from jobs.contract.models import Job, JobStatus, WebhookStatus, is_job_id, utcnow
from jobs.contract.runs import Run, RunStatus
from jobs.contract.settings import Settings
from jobs.contract.uploads import Upload

RUNS = "runs"
# Bounds what one named query returns; callers that sweep find the rest on their next pass.
QUERY_BATCH = 500
# Attempts at a preconditioned write before giving up to the caller's retry.
_RUN_WRITE_ATTEMPTS = 5
_DECIDE_ATTEMPTS = 16
# Longest pause before deciding again after losing a race for the job document: parallel
# stages and items end close together, and a random pause spreads them out.
_MAX_BACKOFF_SECONDS = 0.5
# What a preconditioned write raises when its document changed since it was read.
_WRITTEN_MEANWHILE = (AlreadyExists, FailedPrecondition, NotFound)

T = TypeVar("T")


@dataclass(frozen=True)
class Decision(Generic[T]):
    """What a decision function answers, and the documents as they should read after it."""

    value: T
    job: Job | None = None  # the job as it should be written; None leaves it as it is
    runs: Mapping[str, Run] = field(default_factory=dict)  # stage → its run as it should be


@dataclass(frozen=True)
class StoredOutput:
    """A run's output as its document holds it: the value, or where a big one was put."""

    value: Any
    uri: str | None = None


# The runs a decision needs: known names, or a function of the job that names them.
RunNames = Iterable[str] | Callable[[Job], Iterable[str]]
# A decision: given the job (None if there is none) and the runs it asked for, what to write.
Decide = Callable[[Job | None, Mapping[str, Run]], Decision[T]]


def firestore_client(settings: Settings) -> firestore.AsyncClient:
    """The async Firestore client; it finds the emulator through FIRESTORE_EMULATOR_HOST."""
    return firestore.AsyncClient(project=settings.project_id)


def job_to_document(job: Job) -> dict[str, Any]:
    """A job as Firestore stores it: native timestamps, enums as their string values."""
    return job.model_dump(mode="python")


def job_from_document(data: dict[str, Any]) -> Job:
    return Job.model_validate(data)


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """The top-level fields of `after` that differ from `before`."""
    return {name: value for name, value in after.items() if before.get(name) != value}


def job_changes(before: Job, after: Job) -> dict[str, Any]:
    """The fields to write to turn `before` into `after` (the store stamps version and time)."""
    changes = _changes(job_to_document(before), job_to_document(after))
    changes.pop("version", None)
    changes.pop("updated_at", None)
    return changes


def run_to_document(run: Run) -> dict[str, Any]:
    return run.model_dump(mode="python")


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
        self.memory = DocumentMemory()

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
        ref = self.job_ref(job_id)
        self.memory.forget(ref)  # written without knowing the rest of it
        with self.deadline.unavailable():
            await ref.update(stamped(fields), **self.deadline.options())

    async def write_progress(self, before: Job, after: Job) -> None:
        """A running stage's coalesced progress: what changed, without a transaction (only the
        lease holder writes a stage's progress, and its end is written after its last one)."""
        changes = job_changes(before, after)
        if changes:
            await self.update(after.job_id, changes)

    async def decide(self, job_id: str, decide: Decide[T], *, runs: RunNames = ()) -> T:
        """Change a job and its runs atomically, as `decide` says.

        Optimistic, and cheaper than a transaction (one batched read, one write): the job and
        the runs `decide` needs are read, and every change it asks for is written in one batch,
        each write preconditioned on its document being as read (or not existing yet). If any
        was written meanwhile, nothing is, and the job is read and decided again; so `decide`
        must be pure. A run read but not written is covered by the job's precondition: every
        change of who holds a stage, or of whether it is done, writes the job too.

        The read is skipped when this store remembers the documents (`jobs.cloud.memory`) and
        the decision writes the job and creates every run it took as missing: those writes'
        preconditions prove the memory was current. Any other decision made from memory is made
        again on a read.

        `runs` names the runs `decide` needs: a list (read with the job), or a function of the
        job (read after it). A missing job is given to `decide` as None, and then nothing may be
        written.
        """
        from_memory = self.memory.trusted(job_id)
        races = 0
        while races < _DECIDE_ATTEMPTS:
            recalled = self._recall(job_id, runs) if from_memory else None
            if recalled is None:
                from_memory = False
                if races:
                    pause = min(_MAX_BACKOFF_SECONDS, 0.01 * 2**races)
                    await asyncio.sleep(random.uniform(0, pause))
                job_snapshot, read = await self._read_for(job_id, runs)
                assumed: set[str] = set()
            else:
                job_snapshot, read, assumed = recalled
            if not job_snapshot.exists:
                decision = decide(None, {})
                assert decision.job is None, "there is no job to write to"
                assert not decision.runs, "runs belong to a job"
                return decision.value
            job = job_from_document(job_snapshot.to_dict() or {})
            current = {stage: Run.model_validate(s.to_dict() or {}) for stage, s in read.items()}
            decision = decide(job, current)
            changes = job_changes(job, decision.job) if decision.job is not None else {}
            if recalled is not None and not (changes and assumed <= decision.runs.keys()):
                from_memory = False  # nothing would prove the memory current: read and decide
                continue
            batch = self.client.batch()
            written: list[tuple[Any, dict[str, Any]]] = []
            if changes:
                fields = stamped(changes)
                batch.update(job_snapshot.reference, fields, option=self._as(job_snapshot))
                version = int((job_snapshot.to_dict() or {}).get("version", 0)) + 1
                after = {**(job_snapshot.to_dict() or {}), **fields, "version": version}
                written.append((job_snapshot.reference, after))
            for stage, run in decision.runs.items():
                written += self._write_run(batch, self.run_ref(job_id, stage), read.get(stage), run)
            if not written:
                return decision.value
            try:
                with self.deadline.unavailable():
                    results = await batch.commit(**self.deadline.options())
            except _WRITTEN_MEANWHILE:
                if recalled is not None:  # stale memory, not a race: read at once
                    self.memory.distrust(job_id)
                    from_memory = False
                else:
                    races += 1
                continue
            for (ref, data), result in zip(written, results, strict=True):
                self.memory.keep(ref, data, result.update_time)
            return decision.value
        raise TransientError(f"Job {job_id} kept changing while a change was decided.")

    def _recall(
        self, job_id: str, runs: RunNames
    ) -> tuple[Remembered, dict[str, Remembered], set[str]] | None:
        """The job and the runs named as remembered, runs not remembered taken as missing
        (their names returned too); None if the job is not remembered."""
        job_snapshot = self.memory.recall(self.job_ref(job_id))
        if job_snapshot is None or not job_snapshot.exists:
            return None
        names = runs(job_from_document(job_snapshot.to_dict() or {})) if callable(runs) else runs
        read: dict[str, Remembered] = {}
        assumed: set[str] = set()
        for name in names:
            ref = self.run_ref(job_id, name)
            remembered = self.memory.recall(ref)
            if remembered is None:
                remembered = Remembered(ref, None, None)
                assumed.add(name)
            read[name] = remembered
        return job_snapshot, read, assumed

    async def _read_for(self, job_id: str, runs: RunNames) -> tuple[Any, dict[str, Any]]:
        """The job's snapshot and those of the runs named (by stage); one batched read when
        the names are known, two when they depend on the job."""
        job_ref = self.job_ref(job_id)
        known = [] if callable(runs) else list(runs)
        found = await self._get_all([job_ref, *(self.run_ref(job_id, s) for s in known)])
        job_snapshot = found.pop(job_ref.path)
        if job_snapshot.exists and callable(runs):
            job = job_from_document(job_snapshot.to_dict() or {})
            later = [self.run_ref(job_id, stage) for stage in runs(job)]
            found.update(await self._get_all(later))
        for snapshot in found.values():
            self.memory.kept_snapshot(snapshot)
        self.memory.kept_snapshot(job_snapshot)
        return job_snapshot, {snapshot.reference.id: snapshot for snapshot in found.values()}

    async def _get_all(self, refs: list[firestore.AsyncDocumentReference]) -> dict[str, Any]:
        if not refs:  # Firestore refuses a batched read of no documents
            return {}
        found = self.client.get_all(refs, **self.deadline.options())
        with self.deadline.unavailable():
            return {snapshot.reference.path: snapshot async for snapshot in found}

    def _as(self, snapshot: Any) -> Any:
        """A precondition: the document is still as `snapshot` read it."""
        return self.client.write_option(last_update_time=snapshot.update_time)

    def _write_run(
        self, batch: firestore.AsyncWriteBatch, ref: Any, before: Any, run: Run
    ) -> list[tuple[Any, dict[str, Any]]]:
        """Create the run, or update the fields of it that change (as read); the documents
        written, as they will read."""
        assert before is not None, "a decision writes only runs it read"
        document = run_to_document(run)
        if not before.exists:
            batch.create(ref, document)
            return [(ref, document)]
        was = before.to_dict() or {}
        changes = _changes(was, document)
        if not changes:
            return []
        batch.update(ref, changes, option=self._as(before))
        return [(ref, {**was, **changes})]

    async def decide_run(self, job_id: str, stage: str, decide: Callable[[Run], Decision[T]]) -> T:
        """Change one run as `decide` says, with a write preconditioned on the run as read
        (cheaper than a transaction: one read and one write); read again if it changed. A run
        this store remembers is not read first when `decide` changes it (the precondition
        proves the memory current)."""
        ref = self.run_ref(job_id, stage)
        remembered = self.memory.recall(ref)
        for _ in range(_RUN_WRITE_ATTEMPTS - 1):
            snapshot: Any = remembered
            if snapshot is None or not snapshot.exists:
                with self.deadline.unavailable():
                    snapshot = await ref.get(**self.deadline.options())
                self.memory.kept_snapshot(snapshot)
            decision = decide(Run.model_validate(snapshot.to_dict() or {}))
            run = decision.runs.get(stage)
            was = snapshot.to_dict() or {}
            changes = _changes(was, run_to_document(run)) if run is not None else {}
            if remembered is not None and not changes:
                remembered = None  # nothing would prove the memory current: read and decide
                continue
            if run is None or not snapshot.exists:
                assert run is None, "a run is created by a claim, not by decide_run"
                return decision.value
            if not changes:
                return decision.value
            try:
                option = self.client.write_option(last_update_time=snapshot.update_time)
                with self.deadline.unavailable():
                    result = await ref.update(changes, option=option, **self.deadline.options())
            except FailedPrecondition:
                remembered = None
                continue  # written meanwhile: decide again on what is there now
            self.memory.keep(ref, {**was, **changes}, result.update_time)
            return decision.value
        raise RuntimeError(f"run {job_id}/{stage} kept changing under a preconditioned write")

    async def job_fields(self, job_ids: list[str], fields: list[str]) -> dict[str, dict[str, Any]]:
        """Some fields of each of these jobs that exists, by job id (one batched read)."""
        if not job_ids:
            return {}
        refs = [self.job_ref(job_id) for job_id in job_ids]
        found = self.client.get_all(refs, field_paths=fields, **self.deadline.options())
        with self.deadline.unavailable():
            return {s.id: s.to_dict() or {} async for s in found if s.exists}

    async def stop_requested(self, job_id: str) -> bool:
        """Whether the job's stages should stop: its owner asked to cancel it, or it ended
        (another of its stages failed, say), or it is gone (two field reads)."""
        ref = self.job_ref(job_id)
        fields = ["cancel_requested", "status"]
        with self.deadline.unavailable():
            snapshot = await ref.get(field_paths=fields, **self.deadline.options())
        if not snapshot.exists:
            return True
        data = snapshot.to_dict() or {}
        return bool(data.get("cancel_requested")) or JobStatus(data["status"]).terminal

    async def jobs_untouched_since(self, status: JobStatus, before: datetime) -> list[Job]:
        """Jobs in `status` whose document has not changed since `before` (for the sweeper)."""
        query = (
            self.jobs.where(filter=FieldFilter("status", "==", status.value))
            .where(filter=FieldFilter("updated_at", "<", before))
            .limit(QUERY_BATCH)
        )
        with self.deadline.unavailable():
            found = query.stream(**self.deadline.options())
            return [job_from_document(s.to_dict() or {}) async for s in found]

    async def jobs_with_pending_webhooks(self) -> list[Job]:
        """Jobs whose webhook is still to be delivered (for the sweeper)."""
        query = self.jobs.where(
            filter=FieldFilter("webhook.status", "==", WebhookStatus.PENDING.value)
        ).limit(QUERY_BATCH)
        with self.deadline.unavailable():
            found = query.stream(**self.deadline.options())
            return [job_from_document(s.to_dict() or {}) async for s in found]

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

    async def get_runs(self, job_id: str, names: list[str]) -> dict[str, Run]:
        """The runs of these names that exist, by name (batched reads)."""
        found: dict[str, Run] = {}
        for start in range(0, len(names), QUERY_BATCH):
            refs = [self.run_ref(job_id, name) for name in names[start : start + QUERY_BATCH]]
            for snapshot in (await self._get_all(refs)).values():
                if snapshot.exists:
                    found[snapshot.reference.id] = Run.model_validate(snapshot.to_dict() or {})
        return found

    async def stored_outputs(self, job_id: str, names: list[str]) -> dict[str, StoredOutput]:
        """The saved outputs of the named runs that have one: inline, or where they were put.
        A run this store remembers as done is not read again: a done run's output never
        changes (a retry re-runs only what did not succeed)."""
        outputs: dict[str, StoredOutput] = {}
        unknown = []
        for name in names:
            remembered = self.memory.recall(self.run_ref(job_id, name))
            data = remembered.data if remembered is not None else None
            if data is None or data.get("status") != RunStatus.DONE:
                unknown.append(name)
            elif data.get("output") is not None or data.get("output_uri"):
                outputs[name] = StoredOutput(data.get("output"), data.get("output_uri"))
        names = unknown
        for start in range(0, len(names), QUERY_BATCH):
            refs = [self.run_ref(job_id, name) for name in names[start : start + QUERY_BATCH]]
            found = self.client.get_all(
                refs, field_paths=["output", "output_uri"], **self.deadline.options()
            )
            with self.deadline.unavailable():
                async for snapshot in found:
                    data = (snapshot.to_dict() or {}) if snapshot.exists else {}
                    if data.get("output") is not None or data.get("output_uri"):
                        stored = StoredOutput(data.get("output"), data.get("output_uri"))
                        outputs[snapshot.reference.id] = stored
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
