"""The one place configuration is read: environment variables, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    lease_seconds: float = Field(default=60.0, gt=0)
    heartbeat_seconds: float = Field(default=15.0, gt=0)
    max_attempts: int = Field(default=5, ge=1)
    # A push request must end well inside Pub/Sub's 600 s ack deadline; a stage that would run
    # longer checkpoints and continues in a new delivery once this budget is spent.
    stage_time_budget_seconds: float = Field(default=480.0, gt=0, le=590)
    # Pub/Sub's own limit (5..100) before a message goes to the dead-letter topic. It counts
    # every nack, "busy" answers included, so it sits well above max_attempts.
    max_delivery_attempts: int = Field(default=20, ge=5, le=100)
    # A queued job, or a stage with no lease and no message seen, this old is re-published.
    sweep_stale_seconds: float = Field(default=300.0, ge=0)
    progress_interval_seconds: float = Field(default=1.0, ge=0)
    job_ttl_days: int = Field(default=7, ge=1)

    # Cloud Storage: uploads, job sources and artifacts; default "<project>-longrun".
    bucket: str | None = None
    max_source_bytes: int = Field(default=2 * 1024**3, gt=0)
    fetch_max_redirects: int = Field(default=5, ge=0, le=20)
    download_url_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)

    # The demo page: where its built files are, and the Firebase web config it listens with.
    web_dir: Path | None = None
    firebase_web_api_key: str | None = None
    firebase_auth_domain: str | None = None

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
    def _push_auth_complete(self) -> Settings:
        if self.push_auth_service_account and not self.push_auth_audience:
            raise ValueError("LONGRUN_PUSH_AUTH_AUDIENCE is required with a push auth account")
        return self

    @property
    def bucket_name(self) -> str:
        return self.bucket or f"{self.project_id}-longrun"

    @property
    def stages_topic_path(self) -> str:
        """Fully qualified name of the topic that carries one message per stage."""
        return f"projects/{self.project_id}/topics/{self.stages_topic}"

    @property
    def dead_letter_topic_path(self) -> str:
        """Fully qualified name of the topic Pub/Sub moves undeliverable stage messages to."""
        return f"projects/{self.project_id}/topics/{self.dead_letter_topic}"
