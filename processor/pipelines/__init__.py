"""Stage implementations, paired with the catalog's pipelines by name."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from processor.context import StageContext

StageFn = Callable[[StageContext], Coroutine[Any, Any, Any]]


@dataclass(frozen=True)
class PipelineImpl:
    """How a pipeline's stages run: a function per stage name, and the job's result from outputs."""

    stage: Callable[[str], StageFn | None]
    result: Callable[[dict[str, Any]], dict[str, Any]]


def implementations() -> dict[str, PipelineImpl]:
    """Every pipeline the processor can run."""
    from processor.pipelines import diagnostic
    from processor.pipelines.media import pipeline as media

    return {"diagnostic": diagnostic.PIPELINE, "media-analysis": media.PIPELINE}
