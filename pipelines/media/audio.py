"""Loudness by ITU-R BS.1770-4 / EBU R 128, and the silences and loud moments in it.

A span of the recording is measured on its own (`measure_loudness`): decoding seeks to a little
before it, the filters settle over the lead-in, and it keeps the windows of the momentary and
short-term series that start within it and, as histograms, the blocks that end within it;
`combine_loudness` joins the spans' series, adds their histograms into the whole recording's
integrated loudness and loudness range, and decides silences and loud moments over the whole of
it. The whole recording is the one-span case (`analyse_audio`), whose series grow by 9000 floats
an hour each.

Silences and loud moments are judged against the recording's own loudness: silence lies 20 LU
under its integrated loudness, and a loud moment rises above its typical short-term loudness by
a share of its loudness range, so a compressed song, a conversation and a game's explosions each
give the moments that stand out in them.
"""

from __future__ import annotations

from collections.abc import Callable

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import InputContainer

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.decoding import Damage, audio_frames
from pipelines.media.loudness import (
    ABSOLUTE_GATE_LUFS,
    FLOOR_LUFS,
    MOMENTARY_BLOCKS,
    SHORT_TERM_BLOCKS,
    WINDOW_BLOCKS,
    Spread,
    dense,
    histogram,
    integrated_loudness,
    loudness_spread,
    to_lufs,
    trailing_means,
)
from pipelines.media.meter import LoudnessMeter, Metered, block_start
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

# Silence is 20 LU under the recording's integrated loudness, never louder than -45 LUFS, and
# anything under the absolute gate (-70 LUFS) is silence whatever the recording.
SILENCE_BELOW_INTEGRATED_LU = 20.0
SILENCE_CEILING_LUFS = -45.0
MIN_SILENCE_SECONDS = 1.0
# A loud moment's momentary loudness rises over the typical short-term loudness by half the
# loudness range, at least 3 LU (a steady bed swells by a couple) and at most 12: on the real
# recordings of benchmarks.real_media.loudness that is a few moments a minute in game music
# (LRA 7-11) and the raised voices in speech.
PEAK_RISE_PER_RANGE = 0.5
PEAK_MIN_RISE_LU = 3.0
PEAK_MAX_RISE_LU = 12.0
# Loud windows closer than this belong to one moment, so peaks are at least this far apart.
PEAK_SEPARATION_SECONDS = 3.0
# Decoding must start at least this long before a span's first block: a decoder of compressed
# sound needs a frame or two (an MP3 its bit reservoir, AAC its overlap) before it gives the
# samples it would have given decoding from the beginning, and the filters a few milliseconds.
SETTLE_SECONDS = 0.5
# The short-term blocks ending in a span's first windows began this many blocks before it.
LOOK_BACK_BLOCKS = SHORT_TERM_BLOCKS - 1
# A span is read from this long before it (four times longer on each retry if the seek landed
# too late): the look-back and the settling.
LEAD_IN_SECONDS = 4.0
# Progress is reported every this many frames: often enough, and cheap.
_PROGRESS_FRAMES = 64
_DECIMALS = 1


def analyse_audio(
    source: MediaSource,
    *,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> AudioAnalysis:
    """Measure the loudness of the first audio stream and find its silences and loud moments."""
    part, seconds = _measure_span(source, WHOLE, max_seconds, paced(progress))
    return combine_loudness([part], seconds)


def measure_loudness(
    source: MediaSource,
    span: Span,
    *,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> LoudnessSpan:
    """The loudness of the windows that start within `span`, decoding only about that span."""
    part, _ = _measure_span(source, span, max_seconds, paced(progress))
    return part


def combine_loudness(parts: list[LoudnessSpan | None], duration_seconds: float) -> AudioAnalysis:
    """The spans' loudness as one series with the measures of the whole recording, and its
    silences and loud moments; a failed span (None) is a gap, whose windows are neither silence
    nor loud, and whose blocks count in no measure."""
    gaps = find_gaps([part.span if part else None for part in parts], duration_seconds)
    momentary, known = _series(parts, gaps, lambda part: part.momentary_lufs)
    short_term, _ = _series(parts, gaps, lambda part: part.short_term_lufs)
    present = [part for part in parts if part is not None]
    integrated = integrated_loudness(dense([part.momentary_blocks for part in present]))
    spread = loudness_spread(dense([part.short_term_blocks for part in present]))
    reference = spread
    if spread is None and integrated is not None:  # shorter than a short-term block (3 s)
        reference = Spread(range_lu=0.0, typical_lufs=integrated)
    peak = max((part.sample_peak for part in present), default=0.0)
    return AudioAnalysis(
        window_seconds=WINDOW_SECONDS,
        duration_seconds=duration_seconds,
        momentary_lufs=momentary.tolist(),
        short_term_lufs=short_term.tolist(),
        integrated_lufs=_rounded(integrated),
        loudness_range_lu=_rounded(spread.range_lu if spread else None),
        typical_lufs=_rounded(reference.typical_lufs if reference else None),
        sample_peak_dbfs=round(max(20.0 * float(np.log10(max(peak, 1e-5))), FLOOR_LUFS), 2),
        silences=find_silences(momentary, WINDOW_SECONDS, duration_seconds, integrated, known),
        peaks=find_peaks(momentary, WINDOW_SECONDS, reference, known=known),
        gaps=gaps,
    )


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 2)


def _series(
    parts: list[LoudnessSpan | None],
    gaps: list[Span],
    values: Callable[[LoudnessSpan], list[float]],
) -> tuple[Floats, Mask]:
    """The parts' windows placed by their indices, gaps filled with the floor; and which
    windows were measured (not in a gap)."""
    pieces: list[Floats] = []
    length = 0
    for part in (part for part in parts if part is not None):
        if part.first_window < length:
            raise ValueError("spans must be in order and must not overlap")
        pieces += [np.full(part.first_window - length, FLOOR_LUFS), np.array(values(part))]
        length = part.first_window + len(values(part))
    ends = [index_at(gap.end, WINDOW_SECONDS) for gap in gaps]
    pieces.append(np.full(max(0, max(ends, default=0) - length), FLOOR_LUFS))
    levels = np.concatenate(pieces).astype(np.float64)
    known = np.ones(levels.size, dtype=bool)
    for gap, end in zip(gaps, ends, strict=True):
        known[index_at(gap.start, WINDOW_SECONDS) : end] = False
    levels[~known] = FLOOR_LUFS
    return levels, known


def _measure_span(
    source: MediaSource, span: Span, max_seconds: float, report: Progress
) -> tuple[LoudnessSpan, float]:
    """A span's loudness, and where the sound read for it ends (seconds)."""
    for lead_in in lead_ins(span.start, LEAD_IN_SECONDS):
        with open_media(source) as container:
            stream = first_audio(container)
            if stream is None:
                raise unsupported("it has no audio stream")
            reading = _SpanReading(container, stream, span, max_seconds)
            measured = reading.run(lead_in, report)
        if measured is not None:
            report(1.0)
            return measured
    raise AssertionError("reading from the beginning always reaches the span")


def span_loudness(metered: Metered, span: Span, windows: range) -> LoudnessSpan:
    """A span's part of the series and of the measures, from the blocks metered for it (from
    its look-back on): windows `windows`, blocks ending within them."""
    first, last = windows.start * WINDOW_BLOCKS, windows.stop * WINDOW_BLOCKS
    powers = metered.powers[: max(0, last - metered.first_block)]
    ends = metered.first_block + np.arange(powers.size)  # the block each mean ends with
    momentary = to_lufs(trailing_means(powers, MOMENTARY_BLOCKS))
    short_term = to_lufs(trailing_means(powers, SHORT_TERM_BLOCKS))
    # Each window shows the momentary block ending with it; where the sound ends within a
    # window, the one ending with the sound.
    available = metered.first_block + powers.size
    starts = np.arange(first, min(last, available), WINDOW_BLOCKS)
    shown = np.minimum(starts + WINDOW_BLOCKS, available) - 1 - metered.first_block
    return LoudnessSpan(
        span=span,
        window_seconds=WINDOW_SECONDS,
        first_window=windows.start,
        momentary_lufs=np.round(momentary[shown], _DECIMALS).tolist(),
        short_term_lufs=np.round(short_term[shown], _DECIMALS).tolist(),
        momentary_blocks=histogram(momentary[(ends >= first) & (ends >= MOMENTARY_BLOCKS - 1)]),
        short_term_blocks=histogram(short_term[(ends >= first) & (ends >= LOOK_BACK_BLOCKS)]),
        sample_peak=metered.sample_peak,
    )


class _SpanReading:
    """One attempt at a span: seek `lead_in` seconds before it (None: read from the beginning),
    then decode until its last window is whole. Gives up (None) if the seek landed too late
    to let the decoder settle before the span."""

    def __init__(
        self,
        container: InputContainer,
        stream: AudioStream,
        span: Span,
        max_seconds: float,
    ) -> None:
        self.container, self.stream, self.span = container, stream, span
        self.rate = stream.sample_rate
        self.origin = stream_start(stream)
        self.windows = range(
            index_at(span.start, WINDOW_SECONDS), index_at(span.end, WINDOW_SECONDS)
        )
        self.meter = LoudnessMeter(
            sample_rate=self.rate,
            first_block=max(0, self.windows.start * WINDOW_BLOCKS - LOOK_BACK_BLOCKS),
        )
        self.clock = TimeCheck(max_seconds)
        self.max_seconds = max_seconds
        declared = stream_seconds(stream) or container_seconds(container) or 0.0
        self.expected = min(span.end, declared) - span.start

    def run(self, lead_in: float | None, report: Progress) -> tuple[LoudnessSpan, float] | None:
        sought = lead_in is not None and seek_before(
            self.container, self.stream, self.origin + self.span.start - lead_in
        )
        meter, end = self.meter, block_start(self.windows.stop * WINDOW_BLOCKS, self.rate)
        damage = Damage(self.origin)
        for index, frame in enumerate(audio_frames(self.container, self.stream, damage)):
            at = self._sample_at(frame)
            if index == 0 and sought and not self._settles(at):
                return None
            meter.add(frame, at)
            # The levels grow with the sound decoded, which a tiny file can make endless.
            check_length(meter.seconds, self.max_seconds)
            if meter.position >= end:
                break  # The span's last window is complete: the rest is another's.
            if index % _PROGRESS_FRAMES == 0 and self.expected > 0:
                report((meter.seconds - self.span.start) / self.expected)
        part = span_loudness(meter.finish(), self.span, self.windows)
        part.undecodable = damage.within(self.span)
        return part, meter.seconds

    def _sample_at(self, frame: av.AudioFrame) -> int | None:
        """Where the frame's first sample lies on the recording's sample grid, by its timestamp."""
        if frame.time is None:
            return None
        self.clock.frame_at(frame.time - self.origin)
        return round((frame.time - self.origin) * self.rate)

    def _settles(self, first_sample: int | None) -> bool:
        """Whether decoding starts early enough before the span's look-back for the decoder
        to settle."""
        settle = round(SETTLE_SECONDS * self.rate)
        return first_sample is not None and first_sample <= self.meter.start - settle


def find_silences(
    levels: Floats,
    window_seconds: float,
    duration: float,
    integrated_lufs: float | None,
    known: Mask | None = None,
) -> list[Span]:
    """Runs of quiet windows lasting at least MIN_SILENCE_SECONDS; windows not `known` (in a
    gap) are not quiet."""
    reference = -np.inf if integrated_lufs is None else integrated_lufs
    threshold = min(SILENCE_CEILING_LUFS, reference - SILENCE_BELOW_INTEGRATED_LU)
    quiet = levels <= max(threshold, ABSOLUTE_GATE_LUFS)
    spans = []
    for first, last in runs(quiet if known is None else quiet & known):
        start, end = first * window_seconds, min(last * window_seconds, duration)
        if end - start >= MIN_SILENCE_SECONDS:
            spans.append(Span(start=round(start, 3), end=round(end, 3)))
    return spans


def peak_rise(spread: Spread) -> float:
    """How far (LU) over the typical short-term loudness a loud moment's momentary rises."""
    rise = PEAK_RISE_PER_RANGE * spread.range_lu
    return min(max(rise, PEAK_MIN_RISE_LU), PEAK_MAX_RISE_LU)


def find_peaks(
    levels: Floats, window_seconds: float, spread: Spread | None, *, known: Mask | None = None
) -> list[Peak]:
    """Loud moments: each one's onset and loudest window; windows not `known` (in a gap) are
    not loud."""
    if spread is None:
        return []
    gap = max(1, round(PEAK_SEPARATION_SECONDS / window_seconds))
    loud = levels >= spread.typical_lufs + peak_rise(spread)
    peaks = []
    for first, last in runs(loud if known is None else loud & known, bridge=gap):
        peaks.append(
            Peak(
                time=round(first * window_seconds, 3),
                lufs=round(float(levels[first:last].max()), 2),
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
