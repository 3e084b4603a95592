"""The measures of ITU-R BS.1770-4 and EBU R 128 from the meter's 100 ms block powers.

Momentary loudness is the mean power of 400 ms (four blocks), short-term of 3 s (thirty); both
are taken every 100 ms. Integrated loudness gates the momentary blocks (absolute -70 LUFS, then
-10 LU under the mean of what passed); the loudness range (EBU Tech 3342) is the spread between
the 10th and 95th percentiles of the short-term blocks above -70 LUFS and -20 LU under their mean.

Both need every block of the recording, so spans keep each measure's blocks as a histogram of
their loudness, 0.01 LU a bin from the absolute gate up (as libebur128 does at 0.1 LU): its size
is bounded whatever the length, spans add exactly, and a bin's centre is within 0.005 LU of any
block in it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from pipelines.media.models import LoudnessHistogram

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]

MOMENTARY_BLOCKS = 4
SHORT_TERM_BLOCKS = 30
# The series shows each momentary block that starts a window: a window is 400 ms.
WINDOW_BLOCKS = MOMENTARY_BLOCKS
# Loudness of a mean square power: -0.691 makes a 997 Hz sine at 0 dBFS read 0 LUFS mono (the
# K-weighting's gain at 997 Hz).
LOUDNESS_OFFSET = -0.691
# Below any loudness a meter shows; digital silence reads this, JSON has no -inf.
FLOOR_LUFS = -100.0
ABSOLUTE_GATE_LUFS = -70.0
RELATIVE_GATE_LU = -10.0
RANGE_RELATIVE_GATE_LU = -20.0
RANGE_PERCENTILES = (0.10, 0.95)
BIN_LU = 0.01
# Blocks louder than this (a full-scale square wave on every channel of 7.1 reads about +12)
# count in the top bin.
_TOP_LUFS = 30.0
_BINS = round((_TOP_LUFS - ABSOLUTE_GATE_LUFS) / BIN_LU)


def to_lufs(power: Floats) -> Floats:
    """Mean weighted power to loudness, floored so digital silence is a number."""
    with np.errstate(divide="ignore"):
        loudness: Floats = LOUDNESS_OFFSET + 10.0 * np.log10(power)
    return np.maximum(loudness, FLOOR_LUFS)


def trailing_means(powers: Floats, blocks: int) -> Floats:
    """Mean of each run of `blocks` blocks ending at each block; fewer at the very start."""
    if powers.size == 0:
        return powers
    sums = np.convolve(powers, np.ones(blocks))[: powers.size]
    means: Floats = sums / np.minimum(np.arange(1, powers.size + 1), blocks)
    return means


def histogram(loudness: Floats) -> LoudnessHistogram:
    """How many blocks fall in each 0.01 LU bin above the absolute gate."""
    above = loudness[loudness > ABSOLUTE_GATE_LUFS]
    if above.size == 0:
        return LoudnessHistogram(first_bin=0, counts=[])
    bins = np.minimum(((above - ABSOLUTE_GATE_LUFS) / BIN_LU).astype(np.int64), _BINS - 1)
    first = int(bins.min())
    counts = np.bincount(bins - first)
    return LoudnessHistogram(first_bin=first, counts=counts.tolist())


def dense(histograms: list[LoudnessHistogram]) -> Ints:
    """The histograms added up, as counts of every bin."""
    total: Ints = np.zeros(_BINS, dtype=np.int64)
    for part in histograms:
        total[part.first_bin : part.first_bin + len(part.counts)] += np.asarray(
            part.counts, dtype=np.int64
        )
    return total


def _centres() -> Floats:
    centres: Floats = ABSOLUTE_GATE_LUFS + (np.arange(_BINS, dtype=np.float64) + 0.5) * BIN_LU
    return centres


def _mean_loudness(counts: Ints, centres: Floats) -> float | None:
    """The loudness of the mean power of the blocks counted."""
    total = int(counts.sum())
    if total == 0:
        return None
    power = float(np.dot(counts, np.power(10.0, (centres - LOUDNESS_OFFSET) / 10.0))) / total
    return LOUDNESS_OFFSET + 10.0 * float(np.log10(power))


def integrated_loudness(momentary: Ints) -> float | None:
    """Gated integrated loudness (LUFS) of the momentary blocks counted; None if none is above
    the absolute gate."""
    centres = _centres()
    ungated = _mean_loudness(momentary, centres)
    if ungated is None:
        return None
    return _mean_loudness(np.where(centres > ungated + RELATIVE_GATE_LU, momentary, 0), centres)


@dataclass(frozen=True)
class Spread:
    """The short-term loudness of the gated blocks: its range (LRA, LU), and its median, the
    level the recording usually sounds at (LUFS)."""

    range_lu: float
    typical_lufs: float


def loudness_spread(short_term: Ints) -> Spread | None:
    """Loudness range per EBU Tech 3342, and the median, of the short-term blocks counted;
    None if none is above the absolute gate."""
    centres = _centres()
    mean = _mean_loudness(short_term, centres)
    if mean is None:
        return None
    gated = np.where(centres > mean + RANGE_RELATIVE_GATE_LU, short_term, 0)
    low, high, middle = (_percentile(gated, share, centres) for share in (*RANGE_PERCENTILES, 0.5))
    return Spread(range_lu=high - low, typical_lufs=middle)


def _percentile(counts: Ints, share: float, centres: Floats) -> float:
    """The loudness of the block at rank `share` of those counted (nearest rank)."""
    rank = round((int(counts.sum()) - 1) * share)
    return float(centres[int(np.searchsorted(np.cumsum(counts), rank, side="right"))])
