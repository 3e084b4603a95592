"""The one place configuration is read: environment variables, validated at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AliasChoices,
    BeforeValidator,
    Field,
    IPvAnyAddress,
    SecretStr,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from jobs.contract.sources import bucket_problem

# No media job analyses more than a week of recording, whatever LONGRUN_MAX_MEDIA_SECONDS says.
MEDIA_SECONDS_CEILING = 7 * 24 * 3600.0
# Cloud Storage takes the pieces of a resumable upload in multiples of this (the last excepted).
RESUMABLE_UNIT_BYTES = 256 * 1024


def _names(value: Any) -> Any:
    """A list of names from a JSON list or a comma-separated string."""
    if isinstance(value, str):
        text = value.strip()
        return json.loads(text) if text.startswith("[") else [n for n in text.split(",") if n]
    return value


def _json_object(value: Any) -> Any:
    """A mapping from a JSON object string."""
    return json.loads(value) if isinstance(value, str) else value


def _whole_units(size: int) -> int:
    if size % RESUMABLE_UNIT_BYTES:
        raise ValueError(f"must be a multiple of {RESUMABLE_UNIT_BYTES} (256 KiB)")
    return size


def _bucket_names(names: list[str]) -> list[str]:
    """Bucket names as users must spell them, or a start-up error naming the bad one."""
    canonical = [name.strip().lower() for name in names]
    for name in canonical:
        if (problem := bucket_problem(name)) is not None:
            raise ValueError(f"{name!r} in LONGRUN_SOURCE_BUCKETS: {problem}")
    return canonical


class Settings(BaseSettings):
    """longrun's settings: `LONGRUN_*` variables plus Google's own emulator variables."""

    model_config = SettingsConfigDict(env_prefix="LONGRUN_", extra="ignore", frozen=True)

    project_id: str = Field(
        default="longrun-local",
        validation_alias=AliasChoices("GOOGLE_CLOUD_PROJECT", "LONGRUN_PROJECT_ID"),
    )
    # Google's client libraries read these variables themselves; they are declared here so that
    # start-up validates them and the code can tell local from deployed.
    firestore_emulator_host: str | None = Field(
        default=None, validation_alias="FIRESTORE_EMULATOR_HOST"
    )
    pubsub_emulator_host: str | None = Field(default=None, validation_alias="PUBSUB_EMULATOR_HOST")
    storage_emulator_host: str | None = Field(
        default=None, validation_alias="STORAGE_EMULATOR_HOST"
    )

    jobs_collection: str = "jobs"
    uploads_collection: str = "uploads"
    stages_topic: str = "longrun-stages"
    dead_letter_topic: str = "longrun-stages-dead-letter"

    # A crashed holder's stage is free again within a lease; a live one renews it each
    # heartbeat, so a lease survives a couple of slow or failed heartbeats.
    lease_seconds: float = Field(default=15.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    # A push request must end well inside Pub/Sub's 600 s ack deadline; a stage that would run
    # longer checkpoints and continues in a new delivery once this budget is spent.
    stage_time_budget_seconds: float = Field(default=480.0, gt=0, le=590)
    # Pub/Sub's own limit (5..100) before a message goes to the dead-letter topic. It counts
    # every nack, "busy" answers included, so it sits well above max_attempts.
    max_delivery_attempts: int = Field(default=20, ge=5, le=100)
    # A queued job, or a stage with no lease and no message seen, this old is re-published.
    sweep_stale_seconds: float = Field(default=300.0, ge=0)
    # The most one Firestore or Pub/Sub call on the API's request path may take (retries
    # included) before the request is answered 503 BACKEND_UNAVAILABLE.
    backend_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    progress_interval_seconds: float = Field(default=1.0, ge=0)
    job_ttl_days: int = Field(default=7, ge=1)

    # Per-user quotas, kept in Firestore so every instance enforces them (jobs.cloud.quotas); 0
    # turns a limit off. Each unit is one slot document, all read on every submit: hence the caps.
    jobs_per_hour: int = Field(default=20, ge=0, le=200)
    active_jobs_per_user: int = Field(default=3, ge=0, le=50)
    quota_slots_collection: str = "quota_slots"
    idempotency_collection: str = "idempotency_keys"

    # Cloud Storage: uploads, job sources and artifacts; default "<project>-longrun".
    bucket: str | None = None
    # A 4-hour 1080p VOD at 6 Mbit/s is 10.8 GB: 50 GiB leaves room for longer and richer ones.
    max_source_bytes: int = Field(default=50 * 1024**3, gt=0, le=5 * 1024**4)  # GCS: 5 TiB
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    # An https:// source goes into Storage in pieces this big: memory holds about two of them.
    fetch_chunk_bytes: Annotated[int, AfterValidator(_whole_units)] = Field(
        default=8 * 1024**2, ge=RESUMABLE_UNIT_BYTES, le=256 * 1024**2
    )
    # For tests and local stacks only, never in production: https:// source hosts the fetcher
    # connects to at a fixed address, unchecked ({"vod.example": "127.0.0.1"}), and an extra CA
    # bundle to trust their certificates.
    source_host_addresses: Annotated[
        dict[str, IPvAnyAddress], NoDecode, BeforeValidator(_json_object)
    ] = Field(default_factory=dict)
    source_ca_file: Path | None = None
    download_url_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    # The longest recording a media job analyses (48 h by default). Analyses size their grids
    # by it, so a file whose headers claim more is refused; the ceiling keeps that bounded.
    max_media_seconds: float = Field(default=48 * 3600.0, gt=0, le=MEDIA_SECONDS_CEILING)
    # How long the spans are that media analyses fan out over; None chooses from the recording
    # (5-10 minutes, shorter for heavier video). For tuning, and tests comparing span plans.
    media_span_seconds: float | None = Field(default=None, ge=60, le=MEDIA_SECONDS_CEILING)
    # The speech recogniser media-analysis transcribes with (pipelines/media/transcription):
    # "pocketsphinx", embedded and offline (US English only), or "google", Cloud Speech-to-Text
    # v2 in `speech_location` with `speech_model`, for `speech_language` (BCP-47).
    transcription_engine: Literal["pocketsphinx", "google"] = "pocketsphinx"
    speech_location: str = Field(default="global", pattern=r"^[a-z0-9-]+$")
    speech_model: str = Field(default="long", pattern=r"^[a-z0-9_]+$")
    speech_language: str = Field(default="en-US", pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]+)*$")
    # What Speech-to-Text charges a minute of sound (v2 standard models' list price for a
    # project's first 500,000 minutes a month when this was written; set your own rate). The
    # Google engine adds it, for the minutes each response says were billed, to the job's cost.
    speech_usd_per_minute: float = Field(default=0.016, ge=0)
    # Transcription spans: shorter than the other analyses' since a second of speech costs far
    # more to recognise than to measure, so each span's item stays well inside a stage budget.
    transcript_span_seconds: float = Field(default=300.0, ge=10, le=MEDIA_SECONDS_CEILING)
    # Each item recognises its span in pieces of about this much sound, cut in pauses, saving
    # its words after each: a delivery that runs out of time or dies loses one piece at most.
    # For the Google engine a piece is one batch operation; a minute keeps them few.
    transcript_piece_seconds: float = Field(default=60.0, ge=1, le=MEDIA_SECONDS_CEILING)
    # Buckets users may name in gs:// sources. The processor can read more than any one user
    # should, so none by default (gs:// off); longrun's own bucket may never be listed.
    source_buckets: Annotated[
        list[str], NoDecode, BeforeValidator(_names), AfterValidator(_bucket_names)
    ] = Field(default_factory=list)

    # Webhooks (processor/webhooks.py). Without a secret, jobs with a callback_url are refused.
    webhook_secret: SecretStr | None = None
    # The API never signs, so it does not hold the secret: it is told webhooks are on instead.
    webhooks_enabled: bool | None = None
    webhook_max_attempts: int = Field(default=5, ge=1, le=10)
    # The wait before the first retry; it doubles for each one after (capped at a minute).
    webhook_backoff_seconds: float = Field(default=2.0, ge=0, le=60)
    webhook_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # For tests and local receivers only, never in production: host names whose addresses are
    # not checked (e.g. ["localhost"]), and an extra CA bundle to trust receivers' certificates.
    webhook_allowed_hosts: Annotated[list[str], NoDecode, BeforeValidator(_names)] = Field(
        default_factory=list
    )
    webhook_ca_file: Path | None = None

    # The demo page: where its built files are, and the Firebase web config it listens with.
    web_dir: Path | None = None
    firebase_web_api_key: str | None = None
    firebase_auth_domain: str | None = None

    # Who may call the API (service/auth.py) and from where (service/app.py).
    # `local` marks the emulator stack: only then may the Auth emulator (which accepts unsigned
    # tokens) be used, and never on Cloud Run.
    local: bool = False
    firebase_auth_emulator_host: str | None = Field(
        default=None, validation_alias="FIREBASE_AUTH_EMULATOR_HOST"
    )
    allow_anonymous_users: bool = False
    # A verified token is trusted this long before it is checked again (revocation included).
    auth_cache_seconds: float = Field(default=30.0, ge=0, le=300)
    allowed_origins: Annotated[list[str], NoDecode, BeforeValidator(_names)] = Field(
        default_factory=list
    )
    max_body_bytes: int = Field(default=1024**2, ge=1024)
    # Cost accounting. Prices are Cloud Run's published list prices for Tier 1 regions (e.g.
    # us-central1) with request-based billing (CPU only allocated while a request is handled).
    # Each stage attempt is charged for its run time at the processor's whole instance size.
    cpu_usd_per_vcpu_second: float = Field(default=0.000024, ge=0)
    memory_usd_per_gib_second: float = Field(default=0.0000025, ge=0)
    processor_vcpus: float = Field(default=1.0, gt=0)
    processor_memory_gib: float = Field(default=2.0, gt=0)
    # No job may be given a budget (max_cost_usd) above this.
    max_cost_usd_ceiling: float = Field(default=2000.0, gt=0)

    api_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"

    # Observability. The processor verifies each push's OIDC token when an account is named
    # (off locally: the emulator sends no token); the audience is the processor's base URL.
    push_auth_service_account: str | None = None
    push_auth_audience: str | None = None
    push_auth_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    # Spans are always made (their ids go into log lines); "cloud-trace" also exports them.
    trace_exporter: Literal["none", "cloud-trace"] = "none"

    @model_validator(mode="after")
    def _consistent(self) -> Settings:
        if self.push_auth_service_account and not self.push_auth_audience:
            raise ValueError("LONGRUN_PUSH_AUTH_AUDIENCE is required with a push auth account")
        if self.webhook_allowed_hosts and not self.local:
            raise ValueError("LONGRUN_WEBHOOK_ALLOWED_HOSTS is for local stacks (LONGRUN_LOCAL)")
        if self.source_host_addresses and not self.local:
            raise ValueError("LONGRUN_SOURCE_HOST_ADDRESSES is for local stacks (LONGRUN_LOCAL)")
        if self.bucket_name in self.source_buckets:
            raise ValueError("LONGRUN_SOURCE_BUCKETS may not name longrun's own bucket")
        return self

    @property
    def accepts_callbacks(self) -> bool:
        """Whether jobs may ask for a webhook: the secret is here, or the API is told it is."""
        if self.webhooks_enabled is not None:
            return self.webhooks_enabled
        return self.webhook_secret is not None

    @property
    def bucket_name(self) -> str:
        return self.bucket or f"{self.project_id}-longrun"

    @property
    def compute_usd_per_second(self) -> float:
        """What one second of a processor instance costs: its vCPUs and its memory."""
        return (
            self.processor_vcpus * self.cpu_usd_per_vcpu_second
            + self.processor_memory_gib * self.memory_usd_per_gib_second
        )

    @property
    def stages_topic_path(self) -> str:
        """Fully qualified name of the topic that carries one message per stage."""
        return f"projects/{self.project_id}/topics/{self.stages_topic}"

    @property
    def dead_letter_topic_path(self) -> str:
        """Fully qualified name of the topic Pub/Sub moves undeliverable stage messages to."""
        return f"projects/{self.project_id}/topics/{self.dead_letter_topic}"
