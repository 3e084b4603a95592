"""Maintenance endpoints called by Cloud Scheduler (and by `longrun dev`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from pydantic import BaseModel

from jobs.models import StageMessage
from processor.runtime import Runtime
from processor.sweeper import sweep

router = APIRouter(prefix="/tasks", tags=["tasks"])


class SweepResult(BaseModel):
    examined: int
    republished: list[StageMessage]
    webhooks: list[str]


@router.post("/sweep")
async def run_sweep(request: Request) -> SweepResult:
    """Re-publish the stages of jobs that wait on a message that may never come, and the
    webhooks of finished jobs whose webhook message was lost."""
    runtime: Runtime = request.app.state.runtime
    report = await sweep(runtime.store, runtime.publisher, runtime.settings)
    return SweepResult(
        examined=report.examined, republished=report.republished, webhooks=report.webhooks
    )
