"""Every pipeline longrun offers. The service validates and plans jobs from here; the processor
pairs each planned stage with its implementation. Keeping it in `jobs` lets the service plan a job
without importing the processor."""

from __future__ import annotations

from jobs.contract.pipeline import PipelineSpec, StageSpec
from pipelines.diagnostic.spec import DIAGNOSTIC
from pipelines.media.spec import MEDIA_ANALYSIS

PIPELINES: dict[str, PipelineSpec] = {spec.name: spec for spec in (DIAGNOSTIC, MEDIA_ANALYSIS)}

__all__ = ["PIPELINES", "PipelineSpec", "StageSpec"]
