"""`media-analysis` as the processor runs it: one function per planned stage."""

from __future__ import annotations

from typing import Any

from processor.pipelines import PipelineImpl, StageFn
from processor.pipelines.media import stages
from processor.pipelines.media.fetching import fetch

STAGE_FUNCTIONS: dict[str, StageFn] = {
    "fetch": fetch,
    "probe": stages.probe,
    "audio": stages.audio,
    "scenes": stages.scenes,
    "chat": stages.chat,
    "highlights": stages.highlights,
    "thumbnails": stages.thumbnails,
    "report": stages.report,
}


def _result(outputs: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = outputs["report"]
    return summary


PIPELINE = PipelineImpl(stage=STAGE_FUNCTIONS.get, result=_result)
