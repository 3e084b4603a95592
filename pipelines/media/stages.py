"""The stages of `media-analysis` after `fetch`: each reads what earlier stages stored, runs its
analysis in a worker thread (PyAV and numpy hold the CPU, not the event loop) and returns a small
JSON-able output. The heavy lifting lives in the analysis modules; this is the wiring."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any, TypeVar

from pipelines.media.audio import analyse_audio
from pipelines.media.chat import analyse_chat
from pipelines.media.highlights import score_highlights
from pipelines.media.models import (
    AudioAnalysis,
    ChatAnalysis,
    Highlight,
    MediaInfo,
    SceneAnalysis,
    Span,
)
from pipelines.media.probe import probe_media
from pipelines.media.report import build_report, timeline_png
from pipelines.media.scenes import find_scene_cuts
from pipelines.media.spec import MediaInput, MediaOptions
from pipelines.media.thumbnails import video_thumbnail, waveform_thumbnail
from processor.stage import Skipped, StageContext

log = logging.getLogger(__name__)

# Thumbnails cut at once: enough to keep both cores busy, few enough to bound memory.
THUMBNAIL_CONCURRENCY = 4


async def _source(ctx: StageContext) -> Path:
    source = ctx.outputs["fetch"]["source"]
    return await ctx.download(source["uri"], "source" + Path(source["uri"]).suffix)


def _media(ctx: StageContext) -> MediaInfo:
    return MediaInfo.model_validate(ctx.outputs["probe"])


def _options(ctx: StageContext) -> MediaOptions:
    return MediaInput.model_validate(ctx.input).options


Analysis = TypeVar("Analysis", AudioAnalysis, SceneAnalysis, ChatAnalysis)


def _analysis(ctx: StageContext, stage: str, model: type[Analysis]) -> Analysis | None:
    """An earlier analysis stage's output, or None if that stage was skipped."""
    output = ctx.outputs.get(stage)
    if output is None or "skipped" in output:
        return None
    return model.model_validate(output)


async def probe(ctx: StageContext) -> dict[str, Any]:
    path = await _source(ctx)
    ctx.progress(0.5, "reading streams")
    limit = ctx.settings.max_media_seconds
    info = await asyncio.to_thread(probe_media, path, max_seconds=limit)
    return info.model_dump()


async def audio(ctx: StageContext) -> dict[str, Any] | Skipped:
    if not _media(ctx).has_audio:
        return Skipped("The recording has no audio stream.")
    path = await _source(ctx)
    limit = ctx.settings.max_media_seconds
    result = await ctx.run_blocking(analyse_audio, path, max_seconds=limit, message="loudness")
    return result.model_dump()


async def scenes(ctx: StageContext) -> dict[str, Any] | Skipped:
    if not _media(ctx).has_video:
        return Skipped("The recording has no video stream.")
    path = await _source(ctx)
    limit = ctx.settings.max_media_seconds
    result = await ctx.run_blocking(find_scene_cuts, path, max_seconds=limit, message="frames")
    return result.model_dump()


async def chat(ctx: StageContext) -> dict[str, Any] | Skipped:
    stored = ctx.outputs["fetch"].get("chat")
    if stored is None:
        return Skipped("No chat log was given.")
    path = await ctx.download(stored["uri"], "chat.txt")
    duration = _media(ctx).duration_seconds
    result = await asyncio.to_thread(analyse_chat, path, duration_seconds=duration)
    if result.bad_lines:
        ctx.log.info("chat log had unreadable lines", extra={"bad_lines": result.bad_lines})
    return result.model_dump()


async def highlights(ctx: StageContext) -> dict[str, Any]:
    found = await asyncio.to_thread(
        score_highlights,
        duration_seconds=_media(ctx).duration_seconds,
        audio=_analysis(ctx, "audio", AudioAnalysis),
        scenes=_analysis(ctx, "scenes", SceneAnalysis),
        chat=_analysis(ctx, "chat", ChatAnalysis),
        options=_options(ctx),
    )
    return {"highlights": [h.model_dump() for h in found]}


async def thumbnails(ctx: StageContext) -> dict[str, Any]:
    found = [Highlight.model_validate(h) for h in ctx.outputs["highlights"]["highlights"]]
    width = _options(ctx).thumbnail_width
    video = _media(ctx).has_video
    loudness = _analysis(ctx, "audio", AudioAnalysis)
    path = await _source(ctx) if video else None
    gate = asyncio.Semaphore(THUMBNAIL_CONCURRENCY)
    done = 0

    async def cut(index: int, highlight: Highlight) -> dict[str, Any]:
        nonlocal done
        name = f"thumbnail-{index + 1}.jpg"
        async with gate:
            await ctx.check_cancelled()
            try:
                if path is not None:
                    middle = (highlight.start + highlight.end) / 2
                    image = await asyncio.to_thread(video_thumbnail, path, middle, width)
                elif loudness is not None:
                    span = Span(start=highlight.start, end=highlight.end)
                    image = await asyncio.to_thread(waveform_thumbnail, loudness, span, width)
                else:
                    return {"index": index, "error": "nothing to draw a thumbnail from"}
                await ctx.save_artifact(name, image, "image/jpeg")
            except Exception as exc:  # one bad thumbnail must not cost the others
                log.warning("thumbnail %d failed", index + 1, exc_info=True)
                return {"index": index, "error": f"{type(exc).__name__}: {exc}"[:200]}
            finally:
                done += 1
                ctx.progress(done / len(found), f"{done}/{len(found)} thumbnails")
        return {"index": index, "artifact": name}

    items = await asyncio.gather(*(cut(i, h) for i, h in enumerate(found)))
    return {"thumbnails": list(items)}


async def report(ctx: StageContext) -> dict[str, Any]:
    media = _media(ctx)
    found = [Highlight.model_validate(h) for h in ctx.outputs["highlights"]["highlights"]]
    audio_analysis = _analysis(ctx, "audio", AudioAnalysis)
    scene_analysis = _analysis(ctx, "scenes", SceneAnalysis)
    chat_analysis = _analysis(ctx, "chat", ChatAnalysis)
    picture = await asyncio.to_thread(
        timeline_png,
        duration_seconds=media.duration_seconds,
        audio=audio_analysis,
        scenes=scene_analysis,
        chat=chat_analysis,
        highlights=found,
    )
    ctx.progress(0.5, "timeline drawn")
    document = build_report(
        media=media,
        audio=audio_analysis,
        scenes=scene_analysis,
        chat=chat_analysis,
        highlights=found,
    )
    document["thumbnails"] = ctx.outputs["thumbnails"]["thumbnails"]
    await ctx.save_artifact("timeline.png", picture, "image/png")
    await ctx.save_artifact("report.json", json.dumps(document).encode(), "application/json")
    return summary(media, found, ctx.outputs["thumbnails"]["thumbnails"])


def summary(
    media: MediaInfo, found: list[Highlight], thumbnails: list[dict[str, Any]]
) -> dict[str, Any]:
    """The job's `result`: small enough for the job document, enough for a UI's first view."""
    by_index = {item["index"]: item.get("artifact") for item in thumbnails}
    return {
        "duration_seconds": media.duration_seconds,
        "has_video": media.has_video,
        "highlights": [
            {**h.model_dump(), "thumbnail": by_index.get(i)} for i, h in enumerate(found)
        ],
        "report": "report.json",
        "timeline": "timeline.png",
    }


def result(outputs: dict[str, Any]) -> dict[str, Any]:
    """The job's result: the report's summary."""
    summary: dict[str, Any] = outputs["report"]
    return summary
