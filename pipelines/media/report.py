"""The report: everything the analyses found, as JSON, and a timeline picture of it.

The timeline draws one band per signal (loudness, scene cuts, chat rate) over a shared time
axis, with the highlights shaded across all bands. Pillow only: no plotting library to install.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import Any

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from pipelines.media.models import (
    AudioAnalysis,
    ChatAnalysis,
    Highlight,
    MediaInfo,
    SceneAnalysis,
)

Box = tuple[int, int, int, int]
Painter = Callable[[ImageDraw.ImageDraw, Box], None]

LEFT, RIGHT = 80, 16
LOUDNESS_HEIGHT, CUTS_HEIGHT, CHAT_HEIGHT, AXIS_HEIGHT, GAP = 140, 36, 90, 32, 8
LOUDNESS_FLOOR_LUFS = -60.0
# Tick steps to choose from, in seconds: the first giving at most MAX_TICKS ticks wins.
TICK_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 28800)
MAX_TICKS = 12
BACKGROUND = (255, 255, 255)
BAND = (246, 247, 250)
INK = (60, 64, 72)
LOUDNESS = (37, 99, 235)
CUT = (220, 38, 38)
CHAT = (22, 163, 74)
SHADE = (250, 204, 21, 90)


def build_report(
    *,
    media: MediaInfo,
    audio: AudioAnalysis | None,
    scenes: SceneAnalysis | None,
    chat: ChatAnalysis | None,
    highlights: list[Highlight],
    clips: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Everything found, as plain JSON: a summary first, then each analysis in full. Each
    highlight names its clip (an artifact of the job, or None), and `clips` says how each was
    cut (or why not)."""
    clip_names = {c["index"]: c.get("artifact") for c in clips or []}
    return {
        "summary": {
            "duration_seconds": media.duration_seconds,
            "highlights": len(highlights),
            "loud_moments": len(audio.peaks) if audio else None,
            "integrated_lufs": audio.integrated_lufs if audio else None,
            "loudness_range_lu": audio.loudness_range_lu if audio else None,
            "sample_peak_dbfs": audio.sample_peak_dbfs if audio else None,
            "silences": len(audio.silences) if audio else None,
            "scene_cuts": len(scenes.cuts) if scenes else None,
            "chat_messages": chat.messages if chat else None,
            "chat_spikes": len(chat.spikes) if chat else None,
        },
        "media": media.model_dump(mode="json"),
        "highlights": [
            {**highlight.model_dump(mode="json"), "clip": clip_names.get(index)}
            for index, highlight in enumerate(highlights)
        ],
        "clips": clips or [],
        "audio": audio.model_dump(mode="json") if audio else None,
        "scenes": scenes.model_dump(mode="json") if scenes else None,
        "chat": chat.model_dump(mode="json") if chat else None,
    }


class _Timeline:
    """Maps seconds to pixels and stacks bands from the top down."""

    def __init__(self, duration_seconds: float, width: int) -> None:
        self.duration = max(duration_seconds, 1e-6)
        self.width = width
        self.top = GAP

    def x(self, seconds: float) -> int:
        share = min(max(seconds / self.duration, 0.0), 1.0)
        return LEFT + round(share * (self.width - LEFT - RIGHT - 1))

    def band(self, height: int) -> Box:
        box = (LEFT, self.top, self.width - RIGHT - 1, self.top + height)
        self.top += height + GAP
        return box


def timeline_png(
    *,
    duration_seconds: float,
    audio: AudioAnalysis | None,
    scenes: SceneAnalysis | None,
    chat: ChatAnalysis | None,
    highlights: list[Highlight],
    width: int = 1600,
) -> bytes:
    """One PNG, `width` pixels wide: loudness, cuts and chat rate on a shared time axis."""
    timeline = _Timeline(duration_seconds, width)
    bands: list[tuple[str, Box, Painter]] = []
    if audio is not None:
        bands.append(("loudness", timeline.band(LOUDNESS_HEIGHT), _loudness(audio, timeline)))
    if scenes is not None:
        bands.append(("cuts", timeline.band(CUTS_HEIGHT), _cuts(scenes, timeline)))
    if chat is not None:
        bands.append(("chat", timeline.band(CHAT_HEIGHT), _chat(chat, timeline)))
    axis = timeline.band(AXIS_HEIGHT)
    image = Image.new("RGB", (width, timeline.top), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for label, box, paint in bands:
        draw.rectangle(box, fill=BAND)
        paint(draw, box)
        draw.text((8, box[1] + 4), label, fill=INK, font=ImageFont.load_default())
    _axis(draw, axis, timeline)
    _shade(image, highlights, timeline, (GAP, axis[1]))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _loudness(audio: AudioAnalysis, timeline: _Timeline) -> Painter:
    def paint(draw: ImageDraw.ImageDraw, box: Box) -> None:
        left, top, right, bottom = box
        levels = np.asarray(audio.momentary_lufs or [LOUDNESS_FLOOR_LUFS], dtype=np.float64)
        columns = right - left + 1
        # The loudest window under each column, so a short burst is never lost to scaling.
        column_seconds = timeline.duration / columns
        windows = (np.arange(columns) * column_seconds // audio.window_seconds).astype(np.int64)
        starts = np.minimum(windows, levels.size - 1)
        shares = np.clip(np.maximum.reduceat(levels, starts) / LOUDNESS_FLOOR_LUFS, 0.0, 1.0)
        ys = top + np.round(shares * (bottom - top)).astype(int)
        draw.line(list(zip(range(left, right + 1), ys.tolist(), strict=True)), fill=LOUDNESS)
        for peak in audio.peaks:
            x = timeline.x(peak.time)
            draw.ellipse((x - 3, top + 2, x + 3, top + 8), fill=LOUDNESS)

    return paint


def _cuts(scenes: SceneAnalysis, timeline: _Timeline) -> Painter:
    def paint(draw: ImageDraw.ImageDraw, box: Box) -> None:
        for cut in scenes.cuts:
            x = timeline.x(cut)
            draw.line([(x, box[1] + 4), (x, box[3] - 4)], fill=CUT, width=2)

    return paint


def _chat(chat: ChatAnalysis, timeline: _Timeline) -> Painter:
    def paint(draw: ImageDraw.ImageDraw, box: Box) -> None:
        busiest = max(chat.rate_per_window, default=0.0) or 1.0
        for index, rate in enumerate(chat.rate_per_window):
            if rate <= 0:
                continue
            left = timeline.x(index * chat.window_seconds)
            right = max(left, timeline.x((index + 1) * chat.window_seconds) - 1)
            top = box[3] - round(rate / busiest * (box[3] - box[1] - 4))
            draw.rectangle((left, top, right, box[3]), fill=CHAT)

    return paint


def _axis(draw: ImageDraw.ImageDraw, box: Box, timeline: _Timeline) -> None:
    left, top, right, _ = box
    draw.line([(left, top), (right, top)], fill=INK)
    step = next((s for s in TICK_STEPS if timeline.duration / s <= MAX_TICKS), TICK_STEPS[-1])
    font = ImageFont.load_default()
    for tick in np.arange(0.0, timeline.duration + 1e-9, step).tolist():
        x = timeline.x(tick)
        label = clock(tick)
        draw.line([(x, top), (x, top + 6)], fill=INK)
        # The last label would spill off the right edge: keep it inside.
        draw.text(
            (min(x + 2, right - draw.textlength(label, font=font)), top + 8), label, INK, font
        )


def _shade(
    image: Image.Image, highlights: list[Highlight], timeline: _Timeline, rows: tuple[int, int]
) -> None:
    """Highlights as translucent bands over every signal."""
    overlay = Image.new("RGBA", image.size, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for highlight in highlights:
        left, right = timeline.x(highlight.start), timeline.x(highlight.end)
        draw.rectangle((left, rows[0], max(left, right), rows[1]), fill=SHADE)
    image.paste(Image.alpha_composite(image.convert("RGBA"), overlay).convert("RGB"))


def clock(seconds: float) -> str:
    """1:05, or 1:02:05 past the hour."""
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
