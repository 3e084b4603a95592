"""Loudness, window by window, and the silences and loud bursts in it.

A span of the recording is measured on its own (`measure_loudness`): decoding seeks to a little
before it and keeps the windows that start within it, so memory holds only that span's levels;
`combine_loudness` joins the spans and decides silences and bursts over the whole series. The
whole recording is the one-span case (`analyse_audio`), whose levels grow by 7200 floats an hour.
"""

from __future__ import annotations

from dataclasses import dataclass

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import InputContainer

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.decoding import Damage, audio_frames
from pipelines.media.meter import FLOOR_DBFS as FLOOR_DBFS  # highlights take it from here
from pipelines.media.meter import LoudnessMeter
from pipelines.media.models import AudioAnalysis, LoudnessSpan, Peak, Span
from pipelines.media.probe import (
    MediaSource,
    Progress,
    TimeCheck,
    check_length,
    container_seconds,
    first_audio,
    open_media,
    paced,
    stream_seconds,
    stream_start,
    unsupported,
)
from pipelines.media.spans import WHOLE, WINDOW_SECONDS, find_gaps, index_at, lead_ins, seek_before

Floats = npt.NDArray[np.float64]
Mask = npt.NDArray[np.bool_]

# At or below this a window is digital silence whatever the recording's level.
DIGITAL_SILENCE_DBFS = -90.0
# Silence is 20 dB under the recording's typical level, and never louder than -45 dBFS.
SILENCE_BELOW_TYPICAL_DB = 20.0
SILENCE_CEILING_DBFS = -45.0
MIN_SILENCE_SECONDS = 1.0
# A peak rises 3 robust standard deviations above the typical level, and at least 10 dB
# (a steady bed has almost no spread) but never need more than 20 dB (very dynamic material).
PEAK_SIGMAS = 3.0
PEAK_MIN_RISE_DB = 10.0
PEAK_MAX_RISE_DB = 20.0
# Loud windows closer than this belong to one burst, so peaks are at least this far apart.
PEAK_SEPARATION_SECONDS = 3.0
# A span is read from this long before it (four times longer on each retry if the seek landed
# too late) ...
LEAD_IN_SECONDS = 2.0
# ... and decoding must start at least this long before it: a decoder of compressed sound needs
# a frame or two (an MP3 its bit reservoir, AAC its overlap) before it gives the samples it would
# have given decoding from the beginning.
SETTLE_SECONDS = 0.5
# Progress is reported every this many frames: often enough, and cheap.
_PROGRESS_FRAMES = 64


@dataclass(frozen=True)
class Level:
    """A recording's typical loudness (median, dBFS) and its spread (robust sigma, dB)."""

    typical: float
    spread: float


def typical_level(loudness_dbfs: list[float] | Floats) -> Level:
    """Median and robust spread of the windows that are not digital silence."""
    levels = np.asarray(loudness_dbfs, dtype=np.float64)
    sounding = levels[levels > DIGITAL_SILENCE_DBFS]
    if sounding.size == 0:
        return Level(typical=FLOOR_DBFS, spread=0.0)
    median = float(np.median(sounding))
    spread = 1.4826 * float(np.median(np.abs(sounding - median)))
    return Level(typical=median, spread=spread)


def analyse_audio(
    source: MediaSource,
    *,
    window_seconds: float = WINDOW_SECONDS,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> AudioAnalysis:
    """Measure the loudness of the first audio stream and find its silences and loud bursts."""
    part, seconds = _measure_span(source, WHOLE, window_seconds, max_seconds, paced(progress))
    return combine_loudness([part], seconds)


def measure_loudness(
    source: MediaSource,
    span: Span,
    *,
    window_seconds: float = WINDOW_SECONDS,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> LoudnessSpan:
    """The loudness of the windows that start within `span`, decoding only about that span."""
    part, _ = _measure_span(source, span, window_seconds, max_seconds, paced(progress))
    return part


def combine_loudness(
    parts: list[LoudnessSpan | None],
    duration_seconds: float,
    *,
    window_seconds: float = WINDOW_SECONDS,
) -> AudioAnalysis:
    """The spans' loudness as one series, with the silences and bursts of the whole of it; a
    failed span (None) is a gap, whose windows are neither silence nor burst."""
    window = next((part.window_seconds for part in parts if part), window_seconds)
    gaps = find_gaps([part.span if part else None for part in parts], duration_seconds)
    levels, known = _series(parts, gaps, window)
    return AudioAnalysis(
        window_seconds=window,
        duration_seconds=duration_seconds,
        loudness_dbfs=levels.tolist(),
        silences=find_silences(levels, window, duration_seconds, known=known),
        peaks=find_peaks(levels, window, known=known),
        gaps=gaps,
    )


def _series(
    parts: list[LoudnessSpan | None], gaps: list[Span], window: float
) -> tuple[Floats, Mask]:
    """The parts' levels placed by their window indices, gaps filled with the floor; and which
    windows were measured (not in a gap)."""
    pieces: list[Floats] = []
    length = 0
    for part in (part for part in parts if part is not None):
        if part.first_window < length:
            raise ValueError("spans must be in order and must not overlap")
        pieces += [np.full(part.first_window - length, FLOOR_DBFS), np.array(part.loudness_dbfs)]
        length = part.first_window + len(part.loudness_dbfs)
    ends = [index_at(gap.end, window) for gap in gaps]
    pieces.append(np.full(max(0, max(ends, default=0) - length), FLOOR_DBFS))
    levels = np.concatenate(pieces).astype(np.float64)
    known = np.ones(levels.size, dtype=bool)
    for gap, end in zip(gaps, ends, strict=True):
        known[index_at(gap.start, window) : end] = False
    levels[~known] = FLOOR_DBFS
    return levels, known


def _measure_span(
    source: MediaSource, span: Span, window_seconds: float, max_seconds: float, report: Progress
) -> tuple[LoudnessSpan, float]:
    """A span's loudness, and where the sound read for it ends (seconds)."""
    for lead_in in lead_ins(span.start, LEAD_IN_SECONDS):
        with open_media(source) as container:
            stream = first_audio(container)
            if stream is None:
                raise unsupported("it has no audio stream")
            reading = _SpanReading(container, stream, span, window_seconds, max_seconds)
            measured = reading.run(lead_in, report)
        if measured is not None:
            report(1.0)
            return measured
    raise AssertionError("reading from the beginning always reaches the span")


class _SpanReading:
    """One attempt at a span: seek `lead_in` seconds before it (None: read from the beginning),
    then decode until its last window is whole. Gives up (None) if the seek landed too late
    to let the decoder settle before the span."""

    def __init__(
        self,
        container: InputContainer,
        stream: AudioStream,
        span: Span,
        window_seconds: float,
        max_seconds: float,
    ) -> None:
        self.container, self.stream, self.span = container, stream, span
        self.rate = stream.sample_rate
        self.origin = stream_start(stream)
        self.meter = LoudnessMeter(
            sample_rate=self.rate,
            window_seconds=window_seconds,
            first_window=index_at(span.start, window_seconds),
        )
        self.last_window = index_at(span.end, window_seconds)
        self.clock = TimeCheck(max_seconds)
        self.max_seconds = max_seconds
        declared = stream_seconds(stream) or container_seconds(container) or 0.0
        self.expected = min(span.end, declared) - span.start

    def run(self, lead_in: float | None, report: Progress) -> tuple[LoudnessSpan, float] | None:
        sought = lead_in is not None and seek_before(
            self.container, self.stream, self.origin + self.span.start - lead_in
        )
        meter, end = self.meter, self.last_window * self.meter.window
        whole, damage = True, Damage(self.origin)
        for index, frame in enumerate(audio_frames(self.container, self.stream, damage)):
            at = self._sample_at(frame)
            if index == 0 and sought and not self._settles(at):
                return None
            meter.add(frame, at)
            # The levels grow with the sound decoded, which a tiny file can make endless.
            check_length(meter.seconds, self.max_seconds)
            if meter.position >= end:
                whole = False  # The span's last window is complete: the rest is another's.
                break
            if index % _PROGRESS_FRAMES == 0 and self.expected > 0:
                report((meter.seconds - self.span.start) / self.expected)
        levels = meter.finish(partial=whole)[: self.last_window - meter.first_window]
        part = LoudnessSpan(
            span=self.span,
            window_seconds=meter.window_seconds,
            first_window=meter.first_window,
            loudness_dbfs=[round(float(level), 2) for level in levels],
            undecodable=damage.within(self.span),
        )
        return part, meter.seconds

    def _sample_at(self, frame: av.AudioFrame) -> int | None:
        """Where the frame's first sample lies on the recording's sample grid, by its timestamp."""
        if frame.time is None:
            return None
        self.clock.frame_at(frame.time - self.origin)
        return round((frame.time - self.origin) * self.rate)

    def _settles(self, first_sample: int | None) -> bool:
        """Whether decoding starts early enough before the span for the decoder to settle."""
        settle = round(SETTLE_SECONDS * self.rate)
        return first_sample is not None and first_sample <= self.meter.start - settle


def find_silences(
    levels: Floats, window_seconds: float, duration: float, *, known: Mask | None = None
) -> list[Span]:
    """Runs of quiet windows lasting at least MIN_SILENCE_SECONDS; windows not `known` (in a
    gap) are not quiet."""
    level = typical_level(levels)
    threshold = min(SILENCE_CEILING_DBFS, level.typical - SILENCE_BELOW_TYPICAL_DB)
    threshold = max(threshold, DIGITAL_SILENCE_DBFS)
    quiet = levels <= threshold
    spans = []
    for first, last in runs(quiet if known is None else quiet & known):
        start, end = first * window_seconds, min(last * window_seconds, duration)
        if end - start >= MIN_SILENCE_SECONDS:
            spans.append(Span(start=round(start, 3), end=round(end, 3)))
    return spans


def find_peaks(levels: Floats, window_seconds: float, *, known: Mask | None = None) -> list[Peak]:
    """Bursts well above the recording's typical level: each one's onset and loudest window;
    windows not `known` (in a gap) are not loud."""
    level = typical_level(levels)
    if level.typical <= DIGITAL_SILENCE_DBFS:
        return []
    rise = min(max(PEAK_SIGMAS * level.spread, PEAK_MIN_RISE_DB), PEAK_MAX_RISE_DB)
    gap = max(1, round(PEAK_SEPARATION_SECONDS / window_seconds))
    loud = levels >= level.typical + rise
    peaks = []
    for first, last in runs(loud if known is None else loud & known, bridge=gap):
        peaks.append(
            Peak(
                time=round(first * window_seconds, 3),
                dbfs=round(float(levels[first:last].max()), 2),
            )
        )
    return peaks


def runs(mask: npt.NDArray[np.bool_], *, bridge: int = 0) -> list[tuple[int, int]]:
    """[first, last) index pairs of the runs of True; gaps shorter than `bridge` are joined."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    joined: list[tuple[int, int]] = []
    for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
        if joined and start - joined[-1][1] < bridge:
            joined[-1] = (joined[-1][0], end)
        else:
            joined.append((start, end))
    return joined
