"""The stages of `media-analysis` after `fetch`: each reads what earlier stages stored, runs its
analysis in a worker thread (PyAV and numpy hold the CPU, not the event loop) and returns a
JSON-able output. The heavy lifting lives in the analysis modules; this is the wiring.

No stage downloads the recording: each reads the ranges it needs straight from Cloud Storage
(Cloud Run's disk is its memory, and a VOD may be tens of GB). `audio`, `scenes` and `transcribe`
fan out over spans of the recording (`pipelines.media.spans`), one item each, on any processor
instance; their reduce decides silences, bursts and cuts over the whole recording, or joins the
words heard, so the result is the same however many spans it was cut into."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, TypeVar

from jobs.cloud.storage import RangedReader
from pipelines.media import caveats
from pipelines.media.audio import combine_loudness, measure_loudness
from pipelines.media.chat import analyse_chat
from pipelines.media.clips import Clip, cut_clip
from pipelines.media.decoding import joined
from pipelines.media.highlights import score_highlights
from pipelines.media.models import (
    AudioAnalysis,
    ChatAnalysis,
    Highlight,
    LoudnessSpan,
    MediaInfo,
    SceneAnalysis,
    SceneSpan,
    Span,
)
from pipelines.media.probe import probe_media
from pipelines.media.report import build_report, timeline_png
from pipelines.media.report_markdown import markdown_report
from pipelines.media.scenes import combine_scenes, sample_scenes
from pipelines.media.spans import plan_spans
from pipelines.media.spec import MediaInput, MediaOptions
from pipelines.media.thumbnails import video_thumbnail, waveform_thumbnail
from pipelines.media.transcription.captions import (
    group_segments,
    lines_between,
    subrip,
    webvtt,
)
from pipelines.media.transcription.checkpoints import SpanCheckpoint, resumed
from pipelines.media.transcription.engine import Engine, Speech, engine_for
from pipelines.media.transcription.models import Transcript, TranscriptSpan, Word, WordTimes
from pipelines.media.transcription.pieces import split_speech
from pipelines.media.transcription.reconcile import join_spans
from pipelines.media.transcription.sound import read_speech
from processor.stage import Items, Skipped, StageContext

log = logging.getLogger(__name__)

# Thumbnails cut at once: enough to keep both cores busy, few enough to bound memory.
THUMBNAIL_CONCURRENCY = 4
# A transcription item hears this much more on each side of its span, so a word on a boundary
# is heard whole by both neighbours (the reduce keeps it once), with context around it.
TRANSCRIPT_OVERLAP_SECONDS = 5.0
# A transcription item shows this many of its last lines in the job's `latest` as it ends.
LATEST_LINES = 5
# The key of the transcribe stage's `costs` under which a paid recogniser's charges add up.
SPEECH_COST = "speech-to-text"
# Reading a span's sound is this share of a transcription item's work; recognising it the rest.
_READ_SHARE = 0.1
# The job document holds at most this many warnings (a badly damaged file could have hundreds).
MAX_RESULT_WARNINGS = 20


def _source_uri(ctx: StageContext) -> str:
    uri: str = ctx.outputs["fetch"]["source"]["uri"]
    return uri


def _reader(ctx: StageContext) -> RangedReader:
    """A ranged reader of the recording, as the probe saw it (a replaced object is refused)."""
    generation = ctx.outputs["probe"].get("generation")
    return ctx.storage.open_ranged(_source_uri(ctx), generation=generation)


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
    ctx.progress(0.5, "reading streams")
    limit = ctx.settings.max_media_seconds

    def read() -> tuple[MediaInfo, int]:
        with ctx.storage.open_ranged(_source_uri(ctx)) as reader:
            return probe_media(reader, max_seconds=limit), reader.generation

    info, generation = await asyncio.to_thread(read)
    # Every later reader opens this generation: a source replaced mid-job is refused.
    return {**info.model_dump(), "generation": generation}


def _span_items(ctx: StageContext, media: MediaInfo) -> Items:
    spans = plan_spans(media, target_seconds=ctx.settings.media_span_seconds)
    return Items([span.model_dump() for span in spans])


async def audio(ctx: StageContext) -> Items | Skipped:
    media = _media(ctx)
    if not media.has_audio:
        return Skipped("The recording has no audio stream.")
    return _span_items(ctx, media)


async def scenes(ctx: StageContext) -> Items | Skipped:
    media = _media(ctx)
    if not media.has_video:
        return Skipped("The recording has no video stream.")
    return _span_items(ctx, media)


SpanPart = TypeVar("SpanPart", LoudnessSpan, SceneSpan)


async def _analyse_span(
    ctx: StageContext, analyse: Callable[..., SpanPart], message: str
) -> dict[str, Any]:
    """One item: analyse its span of the recording, reading only that span's bytes."""
    span = Span.model_validate(ctx.item)
    limit = ctx.settings.max_media_seconds

    def work(*, progress: Callable[[float], None]) -> tuple[SpanPart, int]:
        with _reader(ctx) as reader:
            part = analyse(reader, span, max_seconds=limit, progress=progress)
            return part, reader.bytes_read

    part, bytes_read = await ctx.run_blocking(work, message=message)
    ctx.log.info(
        "span analysed",
        extra={"span_start": span.start, "span_end": span.end, "bytes_read": bytes_read},
    )
    return {**part.model_dump(), "bytes_read": bytes_read}


async def audio_span(ctx: StageContext) -> dict[str, Any]:
    return await _analyse_span(ctx, measure_loudness, "loudness")


async def scenes_span(ctx: StageContext) -> dict[str, Any]:
    return await _analyse_span(ctx, sample_scenes, "frames")


def _parts(ctx: StageContext, model: type[SpanPart]) -> list[SpanPart | None]:
    assert ctx.item_outputs is not None
    return [None if out is None else model.model_validate(out) for out in ctx.item_outputs]


async def audio_reduce(ctx: StageContext) -> dict[str, Any]:
    """Integrated loudness, loudness range, silences and loud moments over the whole recording;
    the series are also an artifact (compact JSON: a day of it is 2.5 to 2.9 MiB)."""
    parts = _parts(ctx, LoudnessSpan)
    duration = _media(ctx).duration_seconds
    analysis = await asyncio.to_thread(combine_loudness, parts, duration)
    analysis.undecodable = joined(s for part in parts if part for s in part.undecodable)
    analysis.silences = caveats.mostly_outside(analysis.silences, analysis.undecodable)
    window = analysis.window_seconds
    clear = caveats.clear_of(
        [peak.time for peak in analysis.peaks],
        analysis.undecodable,
        before=2 * window,
        after=window,
    )
    analysis.peaks = [peak for peak in analysis.peaks if peak.time in clear]
    series = analysis.model_dump(exclude={"silences", "peaks"})
    data = json.dumps(series, separators=(",", ":")).encode()
    await ctx.save_artifact("loudness.json", data, "application/json")
    return analysis.model_dump()


async def scenes_reduce(ctx: StageContext) -> dict[str, Any]:
    """Cuts decided over the whole recording's samples."""
    parts = _parts(ctx, SceneSpan)
    duration = _media(ctx).duration_seconds
    analysis = await asyncio.to_thread(combine_scenes, parts, duration)
    analysis.undecodable = joined(s for part in parts if part for s in part.undecodable)
    interval = 1.0 / analysis.sample_fps
    analysis.cuts = caveats.clear_of(analysis.cuts, analysis.undecodable, after=interval)
    return analysis.model_dump()


async def transcribe(ctx: StageContext) -> Items | Skipped:
    if not _options(ctx).transcribe:
        return Skipped("Transcription was turned off.")
    media = _media(ctx)
    if not media.has_audio:
        return Skipped("The recording has no audio stream.")
    spans = plan_spans(media, target_seconds=ctx.settings.transcript_span_seconds)
    return Items([span.model_dump() for span in spans])


async def transcribe_span(ctx: StageContext) -> dict[str, Any]:
    """One item: the words heard in its span and the overlaps either side of it, piece by piece
    (`transcription.pieces`), saving them after each piece so that a later delivery of the item
    (after a crash, or once a delivery's time budget ran out) goes on after the last one saved."""
    span = Span.model_validate(ctx.item)
    duration = _media(ctx).duration_seconds
    heard = Span(
        start=max(0.0, span.start - TRANSCRIPT_OVERLAP_SECONDS),
        end=min(duration, span.end + TRANSCRIPT_OVERLAP_SECONDS),
    )
    limit, piece_seconds = ctx.settings.max_media_seconds, ctx.settings.transcript_piece_seconds

    def listen(*, progress: Callable[[float], None]) -> tuple[Engine, list[Speech]]:
        engine = engine_for(ctx.settings)  # the first one per process may load a model
        # A resumed delivery reads the whole stretch again: the same samples cut into the same
        # pieces (a read starting later would resample on another grid), and reading is a
        # small share of the work next to recognising.
        with _reader(ctx) as reader:
            speech = read_speech(
                reader, heard, sample_rate=engine.sample_rate, max_seconds=limit, progress=progress
            )
        return engine, split_speech(speech, piece_seconds)

    engine, pieces = await ctx.run_blocking(listen, message="reading", high=_READ_SHARE)
    words = await _recognise(ctx, engine, pieces)
    part = TranscriptSpan(
        span=span, heard=heard, engine=engine.name, language=engine.language, words=words
    )
    ctx.log.info(
        "span transcribed",
        extra={"span_start": span.start, "span_end": span.end, "words": len(part.words)},
    )
    # Watchers see the words arrive: the span's last lines go into the job's `latest` with
    # the write that records this item's end (the overlaps are its neighbours' to show).
    own = [word for word in part.words if span.start <= word.middle < span.end]
    lines = lines_between(group_segments(own)[-LATEST_LINES:], span.start, span.end)
    ctx.show_latest([line.model_dump() for line in lines])
    return part.model_dump()


async def _recognise(ctx: StageContext, engine: Engine, pieces: list[Speech]) -> list[Word]:
    """The words of every piece, in order, from the first piece no earlier delivery saved; a
    checkpoint after each piece but the last (whose words go out with the item's output)."""
    plan = [len(piece.samples) for piece in pieces]
    saved = resumed(ctx.cursor, plan)
    first, words = (saved.done, saved.words()) if saved else (0, [])
    if saved is not None:
        ctx.log.info("span resumed", extra={"pieces_done": first, "pieces": len(pieces)})
    total = max(1, sum(plan))
    for index in range(first, len(pieces)):
        low, high = (
            _READ_SHARE + (1 - _READ_SHARE) * sum(plan[:n]) / total for n in (index, index + 1)
        )
        heard = await ctx.run_blocking(
            engine.transcribe, pieces[index], message="words", low=low, high=high
        )
        if heard.billed_usd > 0:  # a paid recogniser's charge counts against the job's budget
            ctx.add_cost(heard.billed_usd, SPEECH_COST)
        words += heard.words
        if index + 1 < len(pieces):
            checkpoint = SpanCheckpoint.of(plan, index + 1, words)
            if checkpoint.fits:
                await ctx.checkpoint(checkpoint.model_dump())
            else:
                ctx.log.warning("span checkpoint too large; not saved", extra={"words": len(words)})
    return words


async def transcribe_reduce(ctx: StageContext) -> dict[str, Any]:
    """The spans' words joined, each once, as segments; the transcript files as artifacts."""
    assert ctx.item_outputs is not None
    parts = [
        None if out is None else TranscriptSpan.model_validate(out) for out in ctx.item_outputs
    ]
    duration = _media(ctx).duration_seconds
    words, gaps = await asyncio.to_thread(join_spans, parts, duration)
    first = next((part for part in parts if part is not None), None)
    if first is not None:
        engine_name, language = first.engine, first.language
    else:  # every span failed: name the engine that would have heard them
        engine = await asyncio.to_thread(engine_for, ctx.settings)
        engine_name, language = engine.name, engine.language
    transcript = Transcript(
        engine=engine_name,
        language=language,
        duration_seconds=duration,
        segments=group_segments(words),
        gaps=gaps,
    )
    files = {
        "transcript.json": (transcript.model_dump_json().encode(), "application/json"),
        "transcript.vtt": (webvtt(transcript.segments).encode(), "text/vtt"),
        "transcript.srt": (subrip(transcript.segments).encode(), "application/x-subrip"),
    }
    for name, (data, content_type) in files.items():
        await ctx.save_artifact(name, data, content_type)
    return {
        "engine": transcript.engine,
        "language": transcript.language,
        "words": transcript.word_count,
        "segments": len(transcript.segments),
        "speech_seconds": round(transcript.speech_seconds, 1),
        "gaps": [gap.model_dump() for gap in gaps],
        "artifacts": list(files),
        # The words, timed, for the highlights: a long recording's go to Cloud Storage with the
        # rest of this output (processor.outputs), never into a document.
        "said": WordTimes.of(words).model_dump(),
    }


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
        said=_said(ctx),
    )
    return {"highlights": [h.model_dump() for h in found]}


def _said(ctx: StageContext) -> WordTimes | None:
    """The transcript's timed words, or None if the recording was not transcribed."""
    output = ctx.outputs.get("transcribe")
    if output is None or "said" not in output:
        return None
    return WordTimes.model_validate(output["said"])


async def thumbnails(ctx: StageContext) -> dict[str, Any]:
    found = _highlights(ctx)
    width = _options(ctx).thumbnail_width
    video = _media(ctx).has_video
    loudness = _analysis(ctx, "audio", AudioAnalysis)
    gate = asyncio.Semaphore(THUMBNAIL_CONCURRENCY)

    def frame_at(seconds: float) -> bytes:
        with _reader(ctx) as reader:  # one each: a reader is not shared between threads
            return video_thumbnail(reader, seconds, width)

    done = 0

    async def cut(index: int, highlight: Highlight) -> dict[str, Any]:
        nonlocal done
        name = f"thumbnail-{index + 1}.jpg"
        async with gate:
            await ctx.check_cancelled()
            try:
                if video:
                    middle = (highlight.start + highlight.end) / 2
                    image = await asyncio.to_thread(frame_at, middle)
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


def _highlights(ctx: StageContext) -> list[Highlight]:
    return [Highlight.model_validate(h) for h in ctx.outputs["highlights"]["highlights"]]


async def clips(ctx: StageContext) -> Items | Skipped:
    if not _options(ctx).clips:
        return Skipped("Clips were turned off.")
    found = _highlights(ctx)
    if not found:
        return Skipped("There are no highlights to cut.")
    return Items([{"index": i, "start": h.start, "end": h.end} for i, h in enumerate(found)])


async def clip(ctx: StageContext) -> dict[str, Any]:
    """One item: one highlight cut as a file of its own, reading only its stretch."""
    index = int(ctx.item["index"])
    span = Span(start=ctx.item["start"], end=ctx.item["end"])

    def work(*, progress: Callable[[float], None]) -> tuple[Clip, int]:
        with _reader(ctx) as reader:
            made = cut_clip(reader, span, ctx.scratch_dir, f"clip-{index + 1}", progress=progress)
            return made, reader.bytes_read

    made, bytes_read = await ctx.run_blocking(work, message="clip")
    await ctx.save_artifact(made.path.name, made.path, made.content_type)
    ctx.log.info(
        "clip cut",
        extra={"clip": made.path.name, "method": made.method, "bytes_read": bytes_read},
    )
    return {
        "index": index,
        "artifact": made.path.name,
        "content_type": made.content_type,
        "start": round(made.start, 3),
        "end": round(made.end, 3),
        "method": made.method,
        "skipped_packets": made.skipped_packets,
        "bytes_read": bytes_read,
    }


async def clips_reduce(ctx: StageContext) -> dict[str, Any]:
    """The clips in highlight order; one that could not be cut says so."""
    assert ctx.item_outputs is not None
    missing = "This clip could not be cut (the others were)."
    return {
        "clips": [
            out if out is not None else {"index": i, "error": missing}
            for i, out in enumerate(ctx.item_outputs)
        ]
    }


def _clips(ctx: StageContext) -> list[dict[str, Any]]:
    """The clips cut, if the stage ran."""
    output = ctx.outputs.get("clips") or {}
    clips: list[dict[str, Any]] = output.get("clips", [])
    return clips


async def report(ctx: StageContext) -> dict[str, Any]:
    media = _media(ctx)
    found = _highlights(ctx)
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
        clips=_clips(ctx),
    )
    document["thumbnails"] = ctx.outputs["thumbnails"]["thumbnails"]
    warnings = analysis_warnings(media, audio_analysis, scene_analysis)
    document["warnings"] = warnings
    await ctx.save_artifact("timeline.png", picture, "image/png")
    await ctx.save_artifact("report.json", json.dumps(document).encode(), "application/json")
    text = markdown_report(media, found).encode()
    await ctx.save_artifact("report.md", text, "text/markdown; charset=utf-8")
    thumbnails = ctx.outputs["thumbnails"]["thumbnails"]
    return summary(media, found, thumbnails, _clips(ctx), audio_analysis, warnings)


def analysis_warnings(
    media: MediaInfo, audio: AudioAnalysis | None, scenes: SceneAnalysis | None
) -> list[str]:
    """What the analyses could not do: streams left out, damage skipped, spans not read."""
    found = list(media.warnings)
    for what, analysis in (("audio", audio), ("video", scenes)):
        if analysis is not None:
            found += caveats.undecodable(analysis.undecodable, what)
            found += caveats.unread(analysis.gaps, what)
    return found


def summary(
    media: MediaInfo,
    found: list[Highlight],
    thumbnails: list[dict[str, Any]],
    clips: list[dict[str, Any]] | None = None,
    audio: AudioAnalysis | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Any]:
    """The job's `result`: small enough for the job document, enough for a UI's first view.
    Each highlight names its thumbnail and its clip (artifacts), and where the clip starts."""
    by_index = {item["index"]: item.get("artifact") for item in thumbnails}
    cut = {item["index"]: item for item in clips or [] if "artifact" in item}

    def clip_of(index: int) -> dict[str, Any]:
        made = cut.get(index)
        return {"clip": made["artifact"], "clip_start": made["start"]} if made else {"clip": None}

    return {
        "duration_seconds": media.duration_seconds,
        "has_video": media.has_video,
        "loudness": loudness_summary(audio) if audio is not None else None,
        "highlights": [
            {**h.model_dump(), "thumbnail": by_index.get(i), **clip_of(i)}
            for i, h in enumerate(found)
        ],
        "report": "report.json",
        "timeline": "timeline.png",
        # Damage anywhere could make this list long; the report holds all of it.
        "warnings": (warnings or [])[:MAX_RESULT_WARNINGS],
    }


def loudness_summary(audio: AudioAnalysis) -> dict[str, Any]:
    """The recording's loudness by EBU R 128, in the units a loudness meter shows."""
    return {
        "integrated_lufs": audio.integrated_lufs,
        "loudness_range_lu": audio.loudness_range_lu,
        "sample_peak_dbfs": audio.sample_peak_dbfs,
    }


def result(outputs: dict[str, Any]) -> dict[str, Any]:
    """The job's result: the report's summary, and the transcript's if there is one."""
    summary: dict[str, Any] = dict(outputs["report"])
    transcript = outputs.get("transcribe")
    if transcript is not None and "skipped" not in transcript:
        summary["transcript"] = {
            key: transcript[key] for key in ("language", "words", "speech_seconds", "engine")
        }
        gaps = [Span.model_validate(gap) for gap in transcript.get("gaps", [])]
        unheard = caveats.unread(gaps, "transcript")
        summary["warnings"] = [*summary.get("warnings", []), *unheard][:MAX_RESULT_WARNINGS]
    return summary
