"""Highlights: the stretches of a recording where the sound, the picture, the chat or the speech
stand out.

Each signal becomes a score in [0, 1] on a common one-second grid, measured against the
recording's own norm (its median and robust spread), so a quiet podcast and a loud stream are
judged alike. The scores are averaged with weights; the best moments are then grown into
highlights, best first, without overlapping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.media.audio import peak_rise
from pipelines.media.chat import rate_norm
from pipelines.media.loudness import FLOOR_LUFS, Spread
from pipelines.media.models import (
    AudioAnalysis,
    ChatAnalysis,
    Highlight,
    SceneAnalysis,
)
from pipelines.media.probe import grid_cells
from pipelines.media.spec import MediaOptions
from pipelines.media.speech import Loudness, SpeechSignals, speech_signals
from pipelines.media.transcription.captions import group_segments, lines_between
from pipelines.media.transcription.models import WordTimes

Floats = npt.NDArray[np.float64]

GRID_SECONDS = 1.0
# Cuts, and plain talk, are weaker evidence than a roar, a flood of messages or excited speech.
WEIGHTS = {"audio": 1.0, "chat": 1.0, "scenes": 0.5, "speech": 0.5, "excited": 1.0}
# Where a keyword was said, the score rises this share of the way to 1: above any moment
# without one, and a keyword said at an exciting moment above one said in passing.
KEYWORD_RAISE = 0.8
# Below this, a moment is nothing special and is not offered as a highlight at all.
MIN_SCORE = 0.1
# A highlight grows from its best moment over neighbours scoring at least this share of it.
GROW_FRACTION = 0.5
# Momentary loudness counts from three quarters of a loud moment's rise over the typical
# short-term loudness (a share of the loudness range: audio.peak_rise) and is full at 1.5 rises.
AUDIO_RAMP = (0.75, 1.5)
# Chat counts from 2 deviations above its median rate and is full at 8.
CHAT_RAMP = (2.0, 8.0)
# Cuts are counted over 10 s; two more than usual start to count, four more are full.
CUT_SPAN_SECONDS = 10
CUT_RAMP = (1.0, 4.0)


@dataclass(frozen=True)
class _Signals:
    """Each available signal's score per grid cell, in [0, 1]."""

    audio: Floats | None
    chat: Floats | None
    scenes: Floats | None
    speech: Floats | None = None  # how much is said (pipelines.media.speech)
    excited: Floats | None = None  # said loud or fast

    def combined(self) -> Floats | None:
        present = {name: s for name, s in vars(self).items() if s is not None}
        if not present:
            return None
        total: Floats = sum(WEIGHTS[name] * s for name, s in present.items())
        return total / sum(WEIGHTS[name] for name in present)


def score_highlights(
    *,
    duration_seconds: float,
    audio: AudioAnalysis | None,
    scenes: SceneAnalysis | None,
    chat: ChatAnalysis | None,
    options: MediaOptions,
    said: WordTimes | None = None,
) -> list[Highlight]:
    """The best `options.highlights` highlights, non-overlapping, in time order, each with the
    transcript lines said in it (`said`: the transcript's words, if there is one)."""
    cells = grid_cells(duration_seconds, GRID_SECONDS)
    speech = _speech(said, audio, cells, options) if said is not None else None
    signals = _Signals(
        audio=audio_scores(audio, cells) if audio is not None else None,
        chat=chat_scores(chat, cells) if chat is not None else None,
        scenes=scene_scores(scenes, cells) if scenes is not None else None,
        speech=speech.density if speech is not None else None,
        excited=speech.excited if speech is not None else None,
    )
    score = signals.combined()
    if score is None:
        return []
    if speech is not None:
        score = score + (1.0 - score) * KEYWORD_RAISE * speech.keyword
    lines = group_segments(said.words()) if said is not None else []
    highlights = []
    for first, last in pick_spans(score, options):
        start, end = first * GRID_SECONDS, min(last * GRID_SECONDS, duration_seconds)
        highlights.append(
            Highlight(
                start=round(start, 3),
                end=round(end, 3),
                score=round(float(score[first:last].max()), 3),
                reasons=reasons(start, end, signals, audio, scenes, chat)
                + (speech.reasons(start, end) if speech is not None else []),
                transcript=lines_between(lines, start, end),
            )
        )
    return sorted(highlights, key=lambda highlight: highlight.start)


def _speech(
    said: WordTimes, audio: AudioAnalysis | None, cells: int, options: MediaOptions
) -> SpeechSignals | None:
    loudness = None if audio is None else Loudness(audio.momentary_lufs, audio.window_seconds)
    return speech_signals(
        said, cells=cells, grid_seconds=GRID_SECONDS, loudness=loudness, keywords=options.keywords
    )


def ramp(z: Floats, bounds: tuple[float, float]) -> Floats:
    """0 below `bounds[0]`, 1 above `bounds[1]`, linear between."""
    low, high = bounds
    scores: Floats = np.clip((z - low) / (high - low), 0.0, 1.0)
    return scores


def on_grid(values: Floats, window_seconds: float, cells: int) -> Floats:
    """Per-window values on the grid: each cell takes the largest window that starts in it,
    or, for windows longer than a cell, the window that covers the cell's middle."""
    grid: Floats = np.zeros(cells)
    if values.size == 0:
        return grid
    if window_seconds <= GRID_SECONDS:
        cell_of = np.arange(values.size) * window_seconds // GRID_SECONDS
        np.maximum.at(grid, np.minimum(cell_of.astype(np.int64), cells - 1), values)
        return grid
    middles = (np.arange(cells) + 0.5) * GRID_SECONDS
    window_of = np.minimum((middles // window_seconds).astype(np.int64), values.size - 1)
    return values[window_of]


def audio_scores(audio: AudioAnalysis, cells: int) -> Floats:
    if audio.typical_lufs is None:
        return np.zeros(cells)  # nothing above -70 LUFS: nothing stands out
    levels = np.asarray(audio.momentary_lufs, dtype=np.float64)
    spread = Spread(range_lu=audio.loudness_range_lu or 0.0, typical_lufs=audio.typical_lufs)
    rise = peak_rise(spread)
    z = (levels - audio.typical_lufs) / rise
    return on_grid(ramp(z, AUDIO_RAMP), audio.window_seconds, cells)


def chat_scores(chat: ChatAnalysis, cells: int) -> Floats:
    rates = np.asarray(chat.rate_per_window, dtype=np.float64)
    median, deviation = rate_norm(rates, chat.window_seconds)
    return on_grid(ramp((rates - median) / deviation, CHAT_RAMP), chat.window_seconds, cells)


def scene_scores(scenes: SceneAnalysis, cells: int) -> Floats:
    cut_cells = np.minimum((np.asarray(scenes.cuts) // GRID_SECONDS).astype(np.int64), cells - 1)
    counts = np.bincount(cut_cells, minlength=cells).astype(np.float64)
    reach = max(1, round(CUT_SPAN_SECONDS / GRID_SECONDS)) // 2
    # Cuts within `reach` cells either side, from running totals.
    totals = np.concatenate([[0.0], np.cumsum(counts)])
    cell = np.arange(cells)
    nearby = totals[np.minimum(cell + reach, cells)] - totals[np.maximum(cell - reach, 0)]
    return ramp(nearby - float(np.median(nearby)), CUT_RAMP)


def pick_spans(score: Floats, options: MediaOptions) -> list[tuple[int, int]]:
    """[first, last) grid cells of the best spans, best first: each grows from the best moment
    not yet taken (a local maximum), then is padded to the minimum length, never into another
    span."""
    taken = np.zeros(score.size, dtype=bool)
    shortest = math.ceil(options.min_highlight_seconds / GRID_SECONDS)
    longest = max(1, math.floor(options.max_highlight_seconds / GRID_SECONDS))
    spans: list[tuple[int, int]] = []
    for peak in np.argsort(-score, kind="stable").tolist():
        if len(spans) == options.highlights or score[peak] < MIN_SCORE:
            break
        if taken[peak] or not _local_maximum(score, peak, reach=max(1, shortest // 2)):
            continue  # A slope down from a span already taken is not a moment of its own.
        keep = score >= GROW_FRACTION * score[peak]
        first, last = _grow(peak, peak + 1, keep & ~taken, longest)
        first, last = _grow(first, last, ~taken, shortest)
        taken[first:last] = True
        spans.append((first, last))
    return spans


def _local_maximum(score: Floats, cell: int, *, reach: int) -> bool:
    """Whether no cell within `reach` of `cell` scores higher."""
    nearby = score[max(0, cell - reach) : cell + reach + 1]
    return bool(score[cell] >= nearby.max())


def _grow(first: int, last: int, allowed: npt.NDArray[np.bool_], limit: int) -> tuple[int, int]:
    """Widen [first, last) over allowed cells, a cell before then a cell after, up to `limit`."""
    while last - first < limit:
        before = first > 0 and bool(allowed[first - 1])
        after = last < allowed.size and bool(allowed[last])
        if not before and not after:
            break
        if before:
            first -= 1
        if after and last - first < limit:
            last += 1
    return first, last


def reasons(
    start: float,
    end: float,
    signals: _Signals,
    audio: AudioAnalysis | None,
    scenes: SceneAnalysis | None,
    chat: ChatAnalysis | None,
) -> list[str]:
    """What made a span stand out, in words, from each signal that scored in it."""
    cells = slice(int(start // GRID_SECONDS), max(math.ceil(end / GRID_SECONDS), 1))
    found: list[str] = []
    if audio is not None and signals.audio is not None and signals.audio[cells].max() > 0:
        found += _audio_reasons(start, end, audio)
    if chat is not None and signals.chat is not None and signals.chat[cells].max() > 0:
        found.append(_chat_reason(start, end, chat))
    if scenes is not None and signals.scenes is not None and signals.scenes[cells].max() > 0:
        cuts = sum(start <= cut <= end for cut in scenes.cuts)
        found.append(f"{cuts} scene cuts" if cuts > 1 else "frequent scene cuts around it")
    return found


def _audio_reasons(start: float, end: float, audio: AudioAnalysis) -> list[str]:
    moments = [peak for peak in audio.peaks if start <= peak.time <= end]
    if moments:
        return [f"loud moment at {p.time:.1f} s ({p.lufs:.0f} LUFS)" for p in moments]
    first, last = int(start / audio.window_seconds), math.ceil(end / audio.window_seconds)
    loudest = max(audio.momentary_lufs[first:last], default=FLOOR_LUFS)
    above = loudest - (audio.typical_lufs or FLOOR_LUFS)
    return [f"loud: up to {loudest:.0f} LUFS, {above:.0f} LU above typical"]


def _chat_reason(start: float, end: float, chat: ChatAnalysis) -> str:
    first, last = int(start / chat.window_seconds), math.ceil(end / chat.window_seconds)
    busiest = max(chat.rate_per_window[first:last], default=0.0)
    return f"chat spike: {busiest:.1f} msg/s"
