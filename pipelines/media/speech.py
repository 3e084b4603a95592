"""Speech as highlight signals: how much is said, said excitedly, and the keywords said.

On the highlights' grid (one cell a second), from the transcript's timed words and, where the
loudness was measured, each cell's level:
- density: words per second around each cell (over RATE_SECONDS), against the recording's own
  median and robust spread: talk in a quiet stream stands out, and so does a rush of words in a
  talkative one;
- excited speech, the larger of loud speech (cells with words louder than the recording's usual
  voice, the median level of its speech cells) and fast speech (words per second well above the
  median rate of its speech cells);
- keywords: the cells around each place a keyword was said, which the highlights raise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.media.loudness import ABSOLUTE_GATE_LUFS, FLOOR_LUFS
from pipelines.media.report import clock
from pipelines.media.transcription.keywords import KeywordHit, find_keywords
from pipelines.media.transcription.models import WordTimes

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

# Words are counted over this long around each cell: one second holds too few to be a rate.
RATE_SECONDS = 5
# Density counts from 1 robust deviation above the median rate and is full at 4; the deviation
# is at least half a word a second, or a recording of steady talk would make every pause news.
DENSITY_RAMP = (1.0, 4.0)
MIN_RATE_SPREAD = 0.5
# Fast speech: from 1.4 times the usual rate of speech, full at twice it.
FAST_RAMP = (1.4, 2.0)
# Loud speech: from 1.5 robust deviations above the usual voice, full at 4; at least 3 dB each.
LOUD_RAMP = (1.5, 4.0)
MIN_VOICE_SPREAD_DB = 3.0
# The usual rate and voice need this many seconds of speech to mean anything.
MIN_SPEECH_CELLS = 10
# A keyword raises the cells this far either side of where it was said.
KEYWORD_REACH_SECONDS = 2.0


@dataclass(frozen=True)
class Loudness:
    """The recording's level window by window, as the audio analysis measured it."""

    levels_lufs: list[float]  # the momentary loudness series
    window_seconds: float


@dataclass(frozen=True)
class SpeechSignals:
    """The speech scores per grid cell, in [0, 1], and what they were measured from."""

    grid_seconds: float
    rate: Floats  # words per second around each cell
    density: Floats
    fast: Floats
    loud: Floats
    keyword: Floats  # 1 around a keyword said, else 0
    hits: list[KeywordHit]
    usual_rate: float | None
    voice_rise_db: Floats  # dB above the usual voice, in cells with words (else 0)

    @property
    def excited(self) -> Floats:
        excited: Floats = np.maximum(self.fast, self.loud)
        return excited

    def reasons(self, start: float, end: float) -> list[str]:
        """What the speech did between `start` and `end`, in words."""
        cells = self._cells(start, end)
        found = [
            f"said '{hit.keyword}' at {clock(hit.start)}"
            for hit in self.hits
            if start <= hit.start < end
        ]
        rate = float(self.rate[cells].max(initial=0.0))
        if self.fast[cells].max(initial=0.0) > 0 and self.usual_rate:
            found.append(f"fast speech: {rate:.1f} words/s, usually {self.usual_rate:.1f}")
        elif self.density[cells].max(initial=0.0) > 0:
            found.append(f"lots said: {rate:.1f} words/s")
        if self.loud[cells].max(initial=0.0) > 0:
            rise = float(self.voice_rise_db[cells].max())
            found.append(f"loud speech: {rise:.0f} dB above the usual voice")
        return found

    def _cells(self, start: float, end: float) -> slice:
        first = int(start // self.grid_seconds)
        return slice(first, max(first + 1, int(np.ceil(end / self.grid_seconds))))


def speech_signals(
    said: WordTimes,
    *,
    cells: int,
    grid_seconds: float,
    loudness: Loudness | None,
    keywords: list[str],
) -> SpeechSignals | None:
    """The speech signals of a transcript on a grid of `cells`; None if nothing was said."""
    if not said.text:
        return None
    starts, ends = np.asarray(said.start), np.asarray(said.end)
    rate = _rate(starts, ends, cells, grid_seconds)
    talking = _talking(starts, ends, cells, grid_seconds)
    usual_rate = float(np.median(rate[talking])) if talking.sum() >= MIN_SPEECH_CELLS else None
    levels = _levels(loudness, cells, grid_seconds) if loudness is not None else None
    rise = _voice_rise(levels, talking)
    hits = find_keywords(said.words(), keywords) if keywords else []
    return SpeechSignals(
        grid_seconds=grid_seconds,
        rate=rate,
        density=_density(rate),
        fast=_fast(rate, usual_rate, talking),
        loud=rise.score,
        keyword=_around(hits, cells, grid_seconds),
        hits=hits,
        usual_rate=usual_rate,
        voice_rise_db=rise.decibels,
    )


def _ramp(z: Floats, bounds: tuple[float, float]) -> Floats:
    low, high = bounds
    scores: Floats = np.clip((z - low) / (high - low), 0.0, 1.0)
    return scores


def _rate(starts: Floats, ends: Floats, cells: int, grid_seconds: float) -> Floats:
    """Words per second said within RATE_SECONDS around each cell (a word counts where its
    middle is)."""
    middles = np.minimum(((starts + ends) / 2 // grid_seconds).astype(np.int64), cells - 1)
    counts = np.bincount(np.maximum(middles, 0), minlength=cells).astype(np.float64)
    reach = max(1, round(RATE_SECONDS / grid_seconds))
    window = np.ones(reach) / (reach * grid_seconds)
    rate: Floats = np.convolve(counts, window, mode="same")
    return rate


def _talking(starts: Floats, ends: Floats, cells: int, grid_seconds: float) -> Mask:
    """The cells a word is said in."""
    first = np.clip((starts // grid_seconds).astype(np.int64), 0, cells - 1)
    last = np.clip(np.ceil(ends / grid_seconds).astype(np.int64), first + 1, cells)
    edges = np.zeros(cells + 1, dtype=np.int64)
    np.add.at(edges, first, 1)
    np.add.at(edges, last, -1)
    talking: Mask = np.cumsum(edges[:-1]) > 0
    return talking


def _levels(loudness: Loudness, cells: int, grid_seconds: float) -> Floats:
    """Each cell's level: the power mean of the windows starting in it (of the window covering
    its middle, for windows longer than a cell)."""
    levels = np.asarray(loudness.levels_lufs, dtype=np.float64)
    window = loudness.window_seconds
    if levels.size == 0:
        return np.full(cells, FLOOR_LUFS)
    if window > grid_seconds:
        middles = (np.arange(cells) + 0.5) * grid_seconds
        covering: Floats = levels[np.minimum((middles // window).astype(np.int64), levels.size - 1)]
        return covering
    cell_of = np.minimum(
        (np.arange(levels.size) * window // grid_seconds).astype(np.int64), cells - 1
    )
    power = np.bincount(cell_of, weights=10 ** (levels / 10), minlength=cells)
    counts = np.bincount(cell_of, minlength=cells)
    mean: Floats = 10 * np.log10(np.maximum(power / np.maximum(counts, 1), 10 ** (FLOOR_LUFS / 10)))
    return mean


def _density(rate: Floats) -> Floats:
    median = float(np.median(rate))
    spread = max(1.4826 * float(np.median(np.abs(rate - median))), MIN_RATE_SPREAD)
    return _ramp((rate - median) / spread, DENSITY_RAMP)


def _fast(rate: Floats, usual_rate: float | None, talking: Mask) -> Floats:
    if not usual_rate:
        return np.zeros(rate.size)
    fast: Floats = _ramp(rate / usual_rate, FAST_RAMP) * talking
    return fast


@dataclass(frozen=True)
class _Rise:
    decibels: Floats  # above the usual voice, in cells with words
    score: Floats


def _voice_rise(levels: Floats | None, talking: Mask) -> _Rise:
    """How much louder than the recording's usual voice each cell with words is."""
    none = _Rise(np.zeros(talking.size), np.zeros(talking.size))
    if levels is None or talking.sum() < MIN_SPEECH_CELLS:
        return none
    typical, spread = _usual_voice(levels[talking])
    decibels: Floats = np.where(talking, np.maximum(levels - typical, 0.0), 0.0)
    z = decibels / max(spread, MIN_VOICE_SPREAD_DB)
    return _Rise(decibels, _ramp(z, LOUD_RAMP) * talking)


def _usual_voice(levels: Floats) -> tuple[float, float]:
    """The median loudness of the cells with words (above the absolute gate: not silence) and
    its robust spread, in LUFS and LU (an LU is a dB of loudness)."""
    sounding = levels[levels > ABSOLUTE_GATE_LUFS]
    if sounding.size == 0:
        return FLOOR_LUFS, 0.0
    median = float(np.median(sounding))
    return median, 1.4826 * float(np.median(np.abs(sounding - median)))


def _around(hits: list[KeywordHit], cells: int, grid_seconds: float) -> Floats:
    marked: Floats = np.zeros(cells)
    for hit in hits:
        first = max(0, int((hit.start - KEYWORD_REACH_SECONDS) // grid_seconds))
        last = min(cells, int(np.ceil((hit.end + KEYWORD_REACH_SECONDS) / grid_seconds)))
        marked[first:last] = 1.0
    return marked
