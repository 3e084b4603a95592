"""What the service offers, and whether it is alive and ready."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter
from pydantic import BaseModel

from jobs.contract.errors import Unavailable
from pipelines.catalog import PIPELINES
from service.auth import UserDep
from service.deps import PublisherDep, SettingsDep, StoreDep
from service.openapi import AUTHENTICATED, problems

log = logging.getLogger(__name__)

router = APIRouter()


class StageInfo(BaseModel):
    name: str
    label: str
    weight: float


class PipelineInfo(BaseModel):
    name: str
    description: str
    stages: list[StageInfo]
    input_schema: dict[str, object]
    # The budget of a job whose request names no max_cost_usd.
    default_max_cost_usd: float


@router.get("/v1/pipelines", tags=["pipelines"], responses=AUTHENTICATED)
async def list_pipelines(_user: UserDep, settings: SettingsDep) -> list[PipelineInfo]:
    """Every pipeline with its ordered stages (as planned for its default input)."""
    return [
        PipelineInfo(
            name=spec.name,
            description=spec.description,
            stages=[
                StageInfo(name=s.name, label=s.label, weight=s.weight)
                for s in spec.example_stages()
            ],
            input_schema=spec.input_model.model_json_schema(),
            default_max_cost_usd=min(spec.default_max_cost_usd, settings.max_cost_usd_ceiling),
        )
        for spec in PIPELINES.values()
    ]


@router.get("/healthz", tags=["health"])
async def healthz() -> dict[str, str]:
    """The process is alive; touches nothing else."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], responses=problems(503))
async def readyz(store: StoreDep, publisher: PublisherDep) -> dict[str, str]:
    """Firestore and Pub/Sub both answer; otherwise 503."""
    try:
        async with asyncio.timeout(5):
            await asyncio.gather(store.ping(), publisher.ping())
    except Exception as exc:
        log.warning("not ready: %s", exc)
        raise Unavailable("Firestore or Pub/Sub is not reachable.", code="NOT_READY") from None
    return {"status": "ready"}
