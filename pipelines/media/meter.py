"""The loudness meter: decoded sound to K-weighted power per 100 ms block of the recording.

ITU-R BS.1770-4 measures loudness over 400 ms blocks every 100 ms (momentary, and the gating of
integrated loudness) and over 3 s (short-term, and the loudness range): all of them are means
of whole 100 ms blocks, so that is all a meter has to produce. Each block's power is the sum over
channels of its channel weight times the mean square of the K-weighted samples.

Decoded samples are read straight from each frame's planes and filtered a batch of frames at a
time with scipy.signal, the filter state carried from batch to batch, so the filtering is the
same as over the whole recording at once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

import av
import numpy as np
import numpy.typing as npt
from scipy import signal

from pipelines.media.kweighting import channel_weights, k_weighting

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

BLOCKS_PER_SECOND = 10
# Millisecond timestamps (Matroska) jitter by half a millisecond; a frame further than this from
# where the one before it ended marks a real jump in time.
RESYNC_SECONDS = 0.01
# Samples gathered before measuring them (1.4 s at 48 kHz): big enough for
# numpy, small enough for the CPU cache.
_BATCH_SAMPLES = 65536
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
    """How a frame's samples lie in memory: which sample type, planar or not, which channels."""

    format_name: str
    layout_name: str
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


# A frame, and how many of its first samples to leave out (already measured).
Slice = tuple[av.AudioFrame, int]


def _layout_of(piece: Slice) -> SampleLayout:
    frame = piece[0]
    layout = frame.layout
    return SampleLayout(frame.format.name, layout.name, layout.nb_channels)


def block_start(block: int, sample_rate: int) -> int:
    """The first sample of 100 ms block `block` of the recording (blocks of a rate that is not
    a multiple of ten differ by a sample, so no drift builds up over hours)."""
    return block * sample_rate // BLOCKS_PER_SECOND


@dataclass(frozen=True)
class Metered:
    """What the meter measured: each block's weighted power from `first_block` on, and the
    largest sample (1.0 is full scale)."""

    first_block: int
    powers: Floats
    sample_peak: float


@dataclass
class _Filter:
    """The K-weighting of one channel layout, with its state."""

    sos: npt.NDArray[np.float32]
    weights: npt.NDArray[np.float32]
    weighted: npt.NDArray[np.bool_]
    state: npt.NDArray[np.float32]

    @classmethod
    def build(cls, frame: av.AudioFrame, sample_rate: int) -> _Filter:
        weights = channel_weights([channel.name for channel in frame.layout.channels])
        weighted = weights > 0  # the LFE channel is not filtered at all
        state = np.zeros((2, int(weighted.sum()), 2), dtype=np.float32)
        sos = k_weighting(sample_rate).astype(np.float32)
        return cls(sos, weights[weighted].astype(np.float32), weighted, state)

    def power(self, samples: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
        """Each instant's weighted power: the sum over channels of G times the filtered square."""
        filtered, self.state = signal.sosfilt(
            self.sos, samples[self.weighted], axis=1, zi=self.state
        )
        filtered *= filtered
        power: npt.NDArray[np.float32] = self.weights @ filtered
        return power


@dataclass
class LoudnessMeter:
    """Turns decoded frames into the weighted power of each 100 ms block of the recording's
    grid, from block `first_block` on.

    Each frame is placed on the recording's sample grid: right after the frame before it, unless
    its timestamp says otherwise by more than timestamps jitter, when a jump ahead is silence
    and a step back overlaps what was measured (and is left out). So the grid is the same
    wherever decoding started, and a span's blocks are those of the whole recording. Sound
    before `first_block` (a span's lead-in) is filtered, to settle the filters, but not measured.
    """

    sample_rate: int
    first_block: int = 0
    position: int = field(default=0, init=False)
    _started: bool = field(default=False, init=False)
    _cursor: int = field(default=0, init=False)
    _frames: list[Slice] = field(default_factory=list, init=False)
    _batch_at: int = field(default=0, init=False)
    _batched: int = field(default=0, init=False)
    _filter: _Filter | None = field(default=None, init=False)
    _layout: SampleLayout | None = field(default=None, init=False)
    _block: int = field(default=0, init=False)
    _next: int = field(default=0, init=False)
    _carry: float = field(default=0.0, init=False)
    _powers: list[Floats] = field(default_factory=list, init=False)
    _peak: float = field(default=0.0, init=False)

    def __post_init__(self) -> None:
        self._block, self._next = self.first_block, self.start

    @property
    def start(self) -> int:
        """The first sample measured, on the recording's grid."""
        return block_start(self.first_block, self.sample_rate)

    @property
    def seconds(self) -> float:
        """Where the sound placed so far ends."""
        return self.position / self.sample_rate

    def add(self, frame: av.AudioFrame, at: int | None = None) -> None:
        """Place a frame whose first sample is at `at` by its timestamp (None: unknown)."""
        if not self._started:
            self.position, self._started = at or 0, True
            self._cursor = self.position
        jitter = round(RESYNC_SECONDS * self.sample_rate)
        placed = self.position if at is None or abs(at - self.position) <= jitter else at
        begin = max(placed, self._cursor)
        if begin - placed < frame.samples:
            if begin > self._cursor:  # a jump ahead: the filters start again after it
                self._measure()
                self._filter = None
            if not self._frames:
                self._batch_at = begin
            self._frames.append((frame, begin - placed))
            self._batched += placed + frame.samples - begin
            self._cursor = placed + frame.samples
            if self._batched >= _BATCH_SAMPLES:
                self._measure()
        self.position = max(self.position, placed + frame.samples)

    def finish(self) -> Metered:
        """Every whole block's power (a block the sound ends within is left out)."""
        self._measure()
        powers = np.concatenate(self._powers) if self._powers else np.zeros(0)
        return Metered(self.first_block, powers, self._peak)

    def _measure(self) -> None:
        # A stream may change its sample format or channels midway (broadcast AAC does).
        for layout, run in groupby(self._frames, key=_layout_of):
            pieces = list(run)
            samples = _samples(pieces, layout)
            if layout != self._layout or self._filter is None:
                self._filter = _Filter.build(pieces[0][0], self.sample_rate)
                self._layout = layout
            power = self._filter.power(samples)
            measured = max(0, self._next - self._batch_at)
            if measured < samples.shape[1]:
                rest = samples[:, measured:]
                self._peak = max(self._peak, float(rest.max()), -float(rest.min()))
            self._account(self._batch_at, power)
            self._batch_at += samples.shape[1]
        self._frames, self._batched = [], 0

    def _account(self, first: int, power: npt.NDArray[np.float32]) -> None:
        """Add the power of samples `first` on to the blocks; what lies before the first block
        is left out, and a hole before `first` is silence."""
        skip = self._next - first
        if skip >= power.size:
            return
        if skip > 0:
            power = power[skip:]
        elif skip < 0:
            self._advance(None, -skip)
        self._advance(power, power.size)

    def _advance(self, power: npt.NDArray[np.float32] | None, count: int) -> None:
        """Add `count` samples' power (None: silence) at the end of what is measured."""
        end = self._next + count
        last = ((end + 1) * BLOCKS_PER_SECOND - 1) // self.sample_rate  # last block starting by end
        blocks: Ints = np.arange(self._block + 1, last + 1, dtype=np.int64)
        bounds: Ints = blocks * self.sample_rate // BLOCKS_PER_SECOND
        cuts = bounds - self._next
        if power is None:
            sums = np.zeros(cuts.size + 1)
        else:
            starts = np.concatenate([[0], cuts[cuts < count]])
            sums = np.add.reduceat(power, starts, dtype=np.float64)
            if cuts.size and cuts[-1] == count:
                sums = np.append(sums, 0.0)
        sums[0] += self._carry
        if cuts.size:
            first = block_start(self._block, self.sample_rate)
            self._powers.append(sums[:-1] / np.diff(np.concatenate([[first], bounds])))
        self._carry = float(sums[-1])
        self._block += cuts.size
        self._next = end


def _samples(frames: list[Slice], layout: SampleLayout) -> npt.NDArray[np.float32]:
    """The frames' samples as floats at full scale 1.0, shaped (channels, instants)."""
    dtype, scale, zero = layout.sample_type
    per = layout.values_per_instant
    size = np.dtype(dtype).itemsize * per
    pieces = [((frame.samples - skip) * per, skip * size, frame.planes) for frame, skip in frames]
    lanes = np.empty((len(pieces[0][2]), sum(count for count, _, _ in pieces)), dtype=dtype)
    for index, lane in enumerate(lanes):
        # An AudioPlane is a buffer; numpy's stubs only name bytes-like types.
        parts = [
            np.frombuffer(p[index], dtype=dtype, count=count, offset=offset)  # type: ignore[call-overload]
            for count, offset, p in pieces
        ]
        np.concatenate(parts, out=lane)
    values = lanes if layout.planar else lanes[0].reshape(-1, per).T
    samples = values.astype(np.float32, copy=False)  # a copy already: changed in place
    if zero:
        samples -= np.float32(zero)
    if scale != 1.0:
        samples *= np.float32(1.0 / scale)
    return samples
