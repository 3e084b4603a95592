"""Maintenance endpoints called by Cloud Scheduler (and by `longrun dev`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel

from jobs.contract.models import StageMessage
from processor.oidc import require_push_token
from processor.runtime import Runtime
from processor.sweeper import sweep

# Cloud Scheduler calls with the push account's OIDC token, checked like a push.
router = APIRouter(prefix="/tasks", tags=["tasks"], dependencies=[Depends(require_push_token)])


class SweepResult(BaseModel):
    examined: int
    republished: list[StageMessage]
    webhooks: list[str]


@router.post("/sweep", response_model_exclude_none=True)
async def run_sweep(request: Request) -> SweepResult:
    """Re-publish the stages of jobs that wait on a message that may never come, and the
    webhooks of finished jobs whose webhook message was lost."""
    runtime: Runtime = request.app.state.runtime
    report = await sweep(runtime.store, runtime.publisher, runtime.settings)
    return SweepResult(
        examined=report.examined, republished=report.republished, webhooks=report.webhooks
    )
