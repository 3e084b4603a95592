"""Loudness, window by window, and the silences and loud bursts in it.

Decoded samples are read straight from each frame's planes and measured a batch of frames at a
time with numpy. An `AudioResampler` to mono would be simpler, but it costs about four times the
decode itself; the mean power across channels is what a loudness meter sums anyway, and it
cannot cancel out-of-phase channels the way a downmix can. Memory stays flat whatever the length:
only the list of window levels grows (7200 floats an hour at the default window).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.models import AudioAnalysis, Peak, Span
from pipelines.media.probe import (
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

Floats = npt.NDArray[np.float64]

FLOOR_DBFS = -100.0
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
# Frames gathered before measuring them (about a second of AAC): big enough for numpy, small
# enough for the CPU cache.
_BATCH_FRAMES = 64
# Progress is reported every this many frames: often enough, and cheap.
_PROGRESS_FRAMES = 64
# Scale of each sample type to full scale, and where its zero lies.
_SAMPLE_TYPES: dict[str, tuple[type[np.generic], float, float]] = {
    "u8": (np.uint8, 128.0, 128.0),
    "s16": (np.int16, 32768.0, 0.0),
    "s32": (np.int32, 2147483648.0, 0.0),
    "s64": (np.int64, 9223372036854775808.0, 0.0),
    "flt": (np.float32, 1.0, 0.0),
    "dbl": (np.float64, 1.0, 0.0),
}


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
    path: Path,
    *,
    window_seconds: float = 0.5,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> AudioAnalysis:
    """Measure the loudness of the first audio stream and find its silences and loud bursts."""
    report = paced(progress)
    with open_media(path) as container:
        stream = first_audio(container)
        if stream is None:
            raise unsupported("it has no audio stream")
        expected = stream_seconds(stream) or container_seconds(container) or 0.0
        meter = LoudnessMeter(sample_rate=stream.sample_rate, window_seconds=window_seconds)
        clock, origin = TimeCheck(max_seconds), stream_start(stream)
        for index, frame in enumerate(container.decode(stream)):
            if frame.time is not None:
                clock.frame_at(frame.time - origin)
            meter.add(frame)
            # The levels grow with the sound decoded, which a tiny file can make endless.
            check_length(meter.seconds, max_seconds)
            if index % _PROGRESS_FRAMES == 0 and expected > 0:
                report(meter.seconds / expected)
        levels = meter.finish()
    report(1.0)
    return _analysis(levels, window_seconds, meter.seconds)


def _analysis(levels: Floats, window_seconds: float, duration: float) -> AudioAnalysis:
    return AudioAnalysis(
        window_seconds=window_seconds,
        duration_seconds=duration,
        loudness_dbfs=[round(float(level), 2) for level in levels],
        silences=find_silences(levels, window_seconds, duration),
        peaks=find_peaks(levels, window_seconds),
    )


@dataclass(frozen=True)
class SampleLayout:
    """How a frame's samples lie in memory: which sample type, planar or not, how many channels."""

    format_name: str
    channels: int

    @property
    def planar(self) -> bool:
        return self.format_name.endswith("p")

    @property
    def sample_type(self) -> tuple[type[np.generic], float, float]:
        return _SAMPLE_TYPES[self.format_name.removesuffix("p")]

    @property
    def values_per_instant(self) -> int:
        """Values per plane for one sample instant: one if planar, else one per channel."""
        return 1 if self.planar else self.channels


def _layout_key(frame: av.AudioFrame) -> tuple[str, int]:
    return frame.format.name, frame.layout.nb_channels


@dataclass
class LoudnessMeter:
    """Turns decoded frames into one RMS level (dBFS) per window.

    Frames are gathered a few dozen at a time, then read and measured together: per frame that
    leaves one list append, and numpy sees arrays big enough to be fast. A window cut by the
    end of a batch is carried over as its partial sum of power.
    """

    sample_rate: int
    window_seconds: float
    samples: int = field(default=0, init=False)
    _frames: list[av.AudioFrame] = field(default_factory=list, init=False)
    _carry_power: float = field(default=0.0, init=False)
    _carry_samples: int = field(default=0, init=False)
    _levels: list[Floats] = field(default_factory=list, init=False)

    @property
    def window(self) -> int:
        return max(1, round(self.sample_rate * self.window_seconds))

    @property
    def seconds(self) -> float:
        return self.samples / self.sample_rate

    def add(self, frame: av.AudioFrame) -> None:
        self._frames.append(frame)
        if len(self._frames) >= _BATCH_FRAMES:
            self._measure()

    def finish(self) -> Floats:
        """Every window's level; a last partial window counts if it holds a tenth of one."""
        self._measure()
        if self._carry_samples >= self.window / 10:
            self._emit(np.array([self._carry_power / self._carry_samples]))
        return np.concatenate(self._levels) if self._levels else np.zeros(0)

    def _emit(self, power: Floats) -> None:
        self._levels.append(to_dbfs(power))

    def _measure(self) -> None:
        # A stream may change its sample format or channels midway (broadcast AAC does).
        for (format_name, channels), run in groupby(self._frames, key=_layout_key):
            self._measure_run(SampleLayout(format_name, channels), list(run))
        self._frames = []

    def _measure_run(self, layout: SampleLayout, frames: list[av.AudioFrame]) -> None:
        lanes = _lanes(frames, layout)
        per = layout.values_per_instant
        instants = lanes[0].size // per
        self.samples += instants
        head = min(instants, (self.window - self._carry_samples) % self.window)
        whole = (instants - head) // self.window
        cuts = (head * per, (head + whole * self.window) * per)
        sums = [_sums_of_squares(lane, cuts, whole) for lane in lanes]
        norm = layout.sample_type[1] ** 2 * layout.channels
        head_power, body_power, tail_power = (sum(part) / norm for part in zip(*sums, strict=True))
        self._carry_power += head_power
        self._carry_samples += head
        if head and self._carry_samples == self.window:
            self._emit(np.array([self._carry_power / self.window]))
            self._carry_power, self._carry_samples = 0.0, 0
        self._emit(np.asarray(body_power, dtype=np.float64) / self.window)
        self._carry_power += tail_power
        self._carry_samples += instants - head - whole * self.window


def _lanes(frames: list[av.AudioFrame], layout: SampleLayout) -> list[npt.NDArray[np.float32]]:
    """The frames' samples as float arrays, one per plane, centred on zero (not yet scaled)."""
    dtype, _, zero = layout.sample_type
    per = layout.values_per_instant
    planes = [(frame.samples * per, frame.planes) for frame in frames]
    lanes = []
    for index in range(len(planes[0][1])):
        # An AudioPlane is a buffer; numpy's stubs only name bytes-like types.
        parts = [
            np.frombuffer(p[index], dtype=dtype, count=count)  # type: ignore[call-overload]
            for count, p in planes
        ]
        values = np.concatenate(parts).astype(np.float32, copy=False)
        lanes.append(values - np.float32(zero) if zero else values)
    return lanes


def _sums_of_squares(
    lane: npt.NDArray[np.float32], cuts: tuple[int, int], whole: int
) -> tuple[float, Floats, float]:
    """Sums of squares before the first whole window, of each whole window, and after the last."""
    head, body, tail = lane[: cuts[0]], lane[cuts[0] : cuts[1]], lane[cuts[1] :]
    windows = body.reshape(whole, -1) if whole else body.reshape(0, 1)
    # One dot product per window, batched: BLAS is both the fastest and the most accurate here.
    per_window = np.matmul(windows[:, np.newaxis, :], windows[:, :, np.newaxis])[:, 0, 0]
    return float(np.dot(head, head)), per_window.astype(np.float64), float(np.dot(tail, tail))


def to_dbfs(power: Floats) -> Floats:
    """Mean power to dBFS, floored so digital silence is a number JSON can hold."""
    with np.errstate(divide="ignore"):
        levels: Floats = 10.0 * np.log10(power)
    return np.maximum(levels, FLOOR_DBFS)


def find_silences(levels: Floats, window_seconds: float, duration: float) -> list[Span]:
    """Runs of quiet windows lasting at least MIN_SILENCE_SECONDS."""
    level = typical_level(levels)
    threshold = min(SILENCE_CEILING_DBFS, level.typical - SILENCE_BELOW_TYPICAL_DB)
    threshold = max(threshold, DIGITAL_SILENCE_DBFS)
    spans = []
    for first, last in runs(levels <= threshold):
        start, end = first * window_seconds, min(last * window_seconds, duration)
        if end - start >= MIN_SILENCE_SECONDS:
            spans.append(Span(start=round(start, 3), end=round(end, 3)))
    return spans


def find_peaks(levels: Floats, window_seconds: float) -> list[Peak]:
    """Bursts well above the recording's typical level: each one's onset and loudest window."""
    level = typical_level(levels)
    if level.typical <= DIGITAL_SILENCE_DBFS:
        return []
    rise = min(max(PEAK_SIGMAS * level.spread, PEAK_MIN_RISE_DB), PEAK_MAX_RISE_DB)
    gap = max(1, round(PEAK_SEPARATION_SECONDS / window_seconds))
    peaks = []
    for first, last in runs(levels >= level.typical + rise, bridge=gap):
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
