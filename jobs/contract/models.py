"""The job contract both services share: what a client reads and what a stage message carries."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

# Firestore auto-ids are 20 alphanumerics; a "/" or a reserved "__name__" can never name a job.
_JOB_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
STAGE_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"


def is_job_id(value: str) -> bool:
    """Whether `value` could name a job document at all."""
    reserved = value.startswith("__") and value.endswith("__")
    return bool(_JOB_ID.fullmatch(value)) and not reserved


def _checked_job_id(value: str) -> str:
    if not is_job_id(value):
        raise ValueError("not a job id")
    return value


JobId = Annotated[str, AfterValidator(_checked_job_id)]


def utcnow() -> datetime:
    """The current time in UTC; every timestamp longrun writes comes from here."""
    return datetime.now(UTC)


class JobStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        """A terminal job never changes status again (except through an explicit retry)."""
        return self in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class StageStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    RETRYING = "retrying"
    SUCCEEDED = "succeeded"
    SKIPPED = "skipped"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def done(self) -> bool:
        """A done stage counts fully towards progress and is never run again."""
        return self in (StageStatus.SUCCEEDED, StageStatus.SKIPPED)


class ErrorInfo(BaseModel):
    """Why a job or stage failed, in words fit for a user; never a stack trace."""

    code: str
    message: str
    retryable: bool = False
    stage: str | None = None


# A stage shows at most this many entries in the job's `latest`, each of this many bytes at most
# (as Firestore counts them): what a watcher reads as it goes, not what the job found.
MAX_LATEST_ENTRIES = 10
MAX_LATEST_ENTRY_BYTES = 1024
# A stage fans out into at most this many items (one Pub/Sub message and run document each).
MAX_ITEMS = 10_000


def run_name(stage: str, item: int | None = None) -> str:
    """The id of a run document: `stage` for a stage, `stage~n` for its item n ("~" is never in
    a stage name)."""
    return stage if item is None else f"{stage}~{item}"


class StageItems(BaseModel):
    """A stage fanned out over items: how many there are, and how far they got."""

    total: int
    done: int = 0
    failed: int = 0  # failed for good; the stage's policy decides whether it still succeeds
    # Items running now, by number ("0", "1", ...), with their own progress 0..1.
    running: dict[str, float] = Field(default_factory=dict)

    @property
    def settled(self) -> int:
        """Items that will not run again: done or failed for good."""
        return self.done + self.failed

    @property
    def complete(self) -> bool:
        return self.settled >= self.total


class StageState(BaseModel):
    """One stage as the job document shows it."""

    name: str
    label: str
    weight: float = 1.0
    # Stages whose outputs this one reads; it runs once they are all done. None: the stage
    # before it (the whole plan is then a chain).
    needs: list[str] | None = None
    status: StageStatus = StageStatus.PENDING
    progress: float = 0.0
    message: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    attempts: int = 0
    error: ErrorInfo | None = None
    # What the stage spent over all its attempts and deliveries, and on what (compute, APIs).
    cost_usd: float = 0.0
    costs: dict[str, float] = Field(default_factory=dict)
    items: StageItems | None = None  # set once the stage fans out


class Artifact(BaseModel):
    uri: str
    size_bytes: int
    content_type: str


class WebhookStatus(StrEnum):
    PENDING = "pending"  # the job ended; its callback is still to be (or being) called
    DELIVERED = "delivered"
    FAILED = "failed"  # refused, or still failing after the last attempt


class WebhookDelivery(BaseModel):
    """How the call of a job's `callback_url` went; it never changes the job's own status."""

    status: WebhookStatus = WebhookStatus.PENDING
    attempts: int = 0
    last_status_code: int | None = None
    last_error: str | None = None
    delivered_at: datetime | None = None


class Job(BaseModel):
    """The document at `jobs/{job_id}`: the one thing clients watch."""

    model_config = ConfigDict(use_enum_values=False)

    job_id: str
    owner: str
    pipeline: str
    input: dict[str, Any]
    status: JobStatus = JobStatus.QUEUED
    stage: str | None = None
    progress: float = 0.0
    message: str = "Queued"
    eta_seconds: float | None = None
    stages: list[StageState]
    result: dict[str, Any] | None = None
    # What stages showed while they ran, by stage: their newest few entries, newest last (a
    # transcript's latest lines, as its spans finish). Written with an item's or a stage's end.
    latest: dict[str, list[Any]] = Field(default_factory=dict)
    artifacts: dict[str, Artifact] = Field(default_factory=dict)
    error: ErrorInfo | None = None
    cancel_requested: bool = False
    # Money: the sum of the stages' cost_usd, the submit-time estimate, and the budget.
    cost_usd: float = 0.0
    estimated_cost_usd: float | None = None
    max_cost_usd: float | None = None
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    expire_at: datetime
    version: int = 1
    callback_url: str | None = None
    webhook: WebhookDelivery | None = None
    # The W3C trace context of the submit: work started later without one (the sweeper, a
    # retry) publishes in this trace, so one trace covers the whole job.
    traceparent: str | None = None

    def stage_index(self, name: str) -> int | None:
        """Position of the named stage, or None when the job has no such stage."""
        for index, stage in enumerate(self.stages):
            if stage.name == name:
                return index
        return None


class StageMessage(BaseModel):
    """The payload of one Pub/Sub message: run this stage of this job (or one of its items)."""

    model_config = ConfigDict(extra="ignore")

    job_id: JobId
    stage: str = Field(pattern=STAGE_PATTERN)
    item: int | None = Field(default=None, ge=0, lt=MAX_ITEMS)

    @property
    def run_name(self) -> str:
        return run_name(self.stage, self.item)


class JobRequest(BaseModel):
    """What a client sends to start a job."""

    model_config = ConfigDict(extra="forbid")

    pipeline: str = Field(min_length=1, max_length=64, examples=["diagnostic"])
    input: dict[str, Any] = Field(default_factory=dict, examples=[{"stages": 3}])
    callback_url: str | None = Field(
        default=None,
        max_length=2048,
        description="An https:// URL on the public internet, POSTed a signed summary of the "
        "job once it ends (see the README's webhooks section).",
        examples=["https://example.com/hooks/longrun"],
    )
    max_cost_usd: float | None = Field(
        default=None,
        gt=0,
        allow_inf_nan=False,
        strict=True,
        examples=[1.0],
        description="Most the job may spend, in USD (default: the pipeline's own budget).",
    )
