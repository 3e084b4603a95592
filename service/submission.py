"""Turning a job request into a recorded, queued job whose first stage is on its way."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from pydantic import BaseModel, ValidationError

from jobs.cloud.publisher import StagePublisher, publish_or_defer
from jobs.cloud.quotas import Quotas
from jobs.cloud.store import JobStore
from jobs.contract import transitions
from jobs.contract.budget import Budget, job_budget
from jobs.contract.errors import InvalidRequest
from jobs.contract.models import Job, JobRequest, utcnow
from jobs.contract.settings import Settings
from jobs.contract.sources import SOURCE_ERROR, SOURCE_RULES, SourceRules
from jobs.contract.webhooks import WebhooksNotConfigured, check_callback_url
from jobs.telemetry import tracing
from jobs.telemetry.problems import FieldError
from pipelines.catalog import PIPELINES, PipelineSpec

log = logging.getLogger(__name__)


def _pipeline(name: str) -> PipelineSpec:
    spec = PIPELINES.get(name)
    if spec is None:
        known = ", ".join(sorted(PIPELINES))
        raise InvalidRequest(
            f"Unknown pipeline {name!r}; known pipelines: {known}.",
            code="UNKNOWN_PIPELINE",
            field="pipeline",
        )
    return spec


def _validated_input(spec: PipelineSpec, raw: dict[str, Any], settings: Settings) -> BaseModel:
    try:
        return spec.input_model.model_validate(
            raw, context={SOURCE_RULES: SourceRules.of(settings)}
        )
    except ValidationError as exc:
        errors = [
            FieldError(field=".".join(["input", *map(str, e["loc"])]), message=e["msg"])
            for e in exc.errors()
        ]
        names = ", ".join(sorted({e.field for e in errors}))
        refused_sources = all(e["type"] == SOURCE_ERROR for e in exc.errors())
        raise InvalidRequest(
            f"The input does not fit pipeline {spec.name!r}: {names}.",
            code="SOURCE_NOT_ALLOWED" if refused_sources else "INVALID_INPUT",
            errors=errors,
        ) from None


async def _check_uploads(
    spec: PipelineSpec, params: BaseModel, owner: str, store: JobStore
) -> None:
    for upload_id in spec.uploads(params):
        if await store.get_upload(upload_id, owner) is None:
            raise InvalidRequest(
                f"There is no upload {upload_id!r} of yours.",
                code="UPLOAD_NOT_FOUND",
                field="input.source",
            )


def _check_callback(url: str | None, settings: Settings) -> None:
    """A callback must be a public https:// URL, and webhooks must be able to sign."""
    if url is None:
        return
    check_callback_url(url, settings.webhook_allowed_hosts)
    if not settings.accepts_callbacks:
        raise WebhooksNotConfigured(
            "This deployment has no LONGRUN_WEBHOOK_SECRET, so it cannot sign webhooks; "
            "submit without a callback_url.",
            field="callback_url",
        )


def plan_job(
    spec: PipelineSpec,
    params: BaseModel,
    *,
    job_id: str,
    owner: str,
    settings: Settings,
    budget: Budget | None = None,
) -> Job:
    """The queued job that validated input describes."""
    stages = spec.planned(params)
    now = utcnow()
    return Job(
        job_id=job_id,
        owner=owner,
        pipeline=spec.name,
        input=params.model_dump(mode="json"),
        stage=stages[0].name,
        message=f"Queued: {stages[0].label}",
        stages=[stage.initial_state() for stage in stages],
        created_at=now,
        updated_at=now,
        expire_at=now + timedelta(days=settings.job_ttl_days),
        max_cost_usd=budget.max_cost_usd if budget else None,
        estimated_cost_usd=budget.estimated_cost_usd if budget else None,
        traceparent=tracing.current_traceparent(),
    )


async def submit_job(
    request: JobRequest,
    *,
    owner: str,
    store: JobStore,
    publisher: StagePublisher,
    settings: Settings,
    quotas: Quotas,
    job_id: str | None = None,
) -> Job:
    """Record the job within the owner's quotas, then publish its first stage.

    The record is the commitment: if the publish fails the job stays `queued` and the sweeper
    publishes it later, so the client still gets its job id rather than an error to retry.
    """
    spec = _pipeline(request.pipeline)
    params = _validated_input(spec, request.input, settings)  # once: plan and uploads share it
    _check_callback(request.callback_url, settings)
    budget = job_budget(spec, params, request.max_cost_usd, settings)
    await _check_uploads(spec, params, owner, store)
    job = plan_job(
        spec,
        params,
        job_id=job_id or store.new_job_id(),
        owner=owner,
        settings=settings,
        budget=budget,
    )
    job.callback_url = request.callback_url
    async with quotas.admitted(owner, job.job_id):
        await store.create(job)
    await publish_or_defer(publisher, job.job_id, transitions.ready(job))
    return job
