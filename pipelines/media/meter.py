"""The loudness meter: decoded sound to one RMS level (dBFS) per window of the recording.

Decoded samples are read straight from each frame's planes and measured a batch of frames at a
time with numpy. An `AudioResampler` to mono would be simpler, but it costs about four times the
decode itself; the mean power across channels is what a loudness meter sums anyway, and it
cannot cancel out-of-phase channels the way a downmix can.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

import av
import numpy as np
import numpy.typing as npt

Floats = npt.NDArray[np.float64]

FLOOR_DBFS = -100.0
# Millisecond timestamps (Matroska) jitter by half a millisecond; a frame further than this from
# where the one before it ended marks a real jump in time.
RESYNC_SECONDS = 0.01
# Frames gathered before measuring them (about a second of AAC): big enough for numpy, small
# enough for the CPU cache.
_BATCH_FRAMES = 64
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


# A frame, and how many of its first samples to leave out (already measured, or before the span).
Slice = tuple[av.AudioFrame, int]


def _layout_key(piece: Slice) -> tuple[str, int]:
    frame = piece[0]
    return frame.format.name, frame.layout.nb_channels


@dataclass
class LoudnessMeter:
    """Turns decoded frames into one RMS level (dBFS) per window of the recording-wide grid,
    from window `first_window` on.

    Each frame is placed on the recording's sample grid: right after the frame before it, unless
    its timestamp says otherwise by more than timestamps jitter, when a jump ahead is silence
    and a step back overlaps what was measured (and is left out). So the grid is the same
    wherever decoding started, and a span's windows are those of the whole recording.

    Frames are gathered a few dozen at a time, then read and measured together: per frame that
    leaves one list append, and numpy sees arrays big enough to be fast. A window cut by the
    end of a batch is carried over as its partial sum of power.
    """

    sample_rate: int
    window_seconds: float
    first_window: int = 0
    position: int = field(default=0, init=False)
    _started: bool = field(default=False, init=False)
    _measured: int = field(default=0, init=False)
    _frames: list[Slice] = field(default_factory=list, init=False)
    _carry_power: float = field(default=0.0, init=False)
    _carry_samples: int = field(default=0, init=False)
    _levels: list[Floats] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._measured = self.start

    @property
    def window(self) -> int:
        return max(1, round(self.sample_rate * self.window_seconds))

    @property
    def start(self) -> int:
        """The first sample measured, on the recording's grid."""
        return self.first_window * self.window

    @property
    def seconds(self) -> float:
        """Where the sound placed so far ends."""
        return self.position / self.sample_rate

    def add(self, frame: av.AudioFrame, at: int | None = None) -> None:
        """Place a frame whose first sample is at `at` by its timestamp (None: unknown)."""
        if not self._started:
            self.position, self._started = at or 0, True
        jitter = round(RESYNC_SECONDS * self.sample_rate)
        placed = self.position if at is None or abs(at - self.position) <= jitter else at
        begin = max(placed, self._measured)
        if begin - placed < frame.samples:
            if begin > self._measured:
                self._silence(begin - self._measured)
            self._frames.append((frame, begin - placed))
            self._measured = placed + frame.samples
            if len(self._frames) >= _BATCH_FRAMES:
                self._measure()
        self.position = max(self.position, placed + frame.samples)

    def finish(self, *, partial: bool = True) -> Floats:
        """Every window's level; with `partial`, a last partial window counts if it holds a
        tenth of one."""
        self._measure()
        if partial and self._carry_samples >= self.window / 10:
            self._emit(np.array([self._carry_power / self._carry_samples]))
        return np.concatenate(self._levels) if self._levels else np.zeros(0)

    def _emit(self, power: Floats) -> None:
        self._levels.append(to_dbfs(power))

    def _silence(self, count: int) -> None:
        """`count` samples of digital silence: a jump ahead in the timestamps."""
        self._measure()
        head = min(count, (self.window - self._carry_samples) % self.window)
        self._carry_samples += head
        if head and self._carry_samples == self.window:
            self._emit(np.array([self._carry_power / self.window]))
            self._carry_power, self._carry_samples = 0.0, 0
        whole = (count - head) // self.window
        self._emit(np.zeros(whole))
        self._carry_samples += count - head - whole * self.window

    def _measure(self) -> None:
        # A stream may change its sample format or channels midway (broadcast AAC does).
        for (format_name, channels), run in groupby(self._frames, key=_layout_key):
            self._measure_run(SampleLayout(format_name, channels), list(run))
        self._frames = []

    def _measure_run(self, layout: SampleLayout, frames: list[Slice]) -> None:
        lanes = _lanes(frames, layout)
        per = layout.values_per_instant
        instants = lanes[0].size // per
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


def _lanes(frames: list[Slice], layout: SampleLayout) -> list[npt.NDArray[np.float32]]:
    """The frames' samples as float arrays, one per plane, centred on zero (not yet scaled)."""
    dtype, _, zero = layout.sample_type
    per = layout.values_per_instant
    size = np.dtype(dtype).itemsize * per
    planes = [((frame.samples - skip) * per, skip * size, frame.planes) for frame, skip in frames]
    lanes = []
    for index in range(len(planes[0][2])):
        # An AudioPlane is a buffer; numpy's stubs only name bytes-like types.
        parts = [
            np.frombuffer(p[index], dtype=dtype, count=count, offset=offset)  # type: ignore[call-overload]
            for count, offset, p in planes
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
