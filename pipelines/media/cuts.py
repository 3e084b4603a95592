"""Which sampled changes are hard cuts, decided over the whole recording's comparisons.

A comparison is a sample against the one before it: how much the picture changed between them
(`differences`), and, from every frame in between, the largest change from one frame to the
next (`peaks`, at `peak_times`) and the median of the others (`rests`). A hard cut is
- a real change: at least MIN_CHANGE, so flicker on a still picture is not one;
- sudden: the change happens between two frames. Every frame is compared with the one before;
  the largest of those changes since the sample before (its peak) must be SHARPNESS times the
  median of the others, which tells a cut from a pan, a zoom, a dissolve or a transition that
  spans several samples, and PEAK_RATIO times the peaks around it, so a shaky camera or fast
  action, which raises every peak, hides no cut and makes none;
- above the changes around it (RATIO times their median within a second or so either side,
  the comparison itself left out);
- at least MIN_SCENE_SECONDS after the cut before it (of two closer ones, the larger stays).
Its time is the first new frame (the peak's), not the sample's.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from numpy.lib.stride_tricks import sliding_window_view

Floats = npt.NDArray[np.float64]

MIN_CHANGE = 12.0
RATIO = 1.8
PEAK_RATIO = 3.5
# Neighbours either side that make a comparison's surroundings (a second at 4 samples a second).
REACH = 4
# Surroundings calmer than this count as this calm: a still picture does not make every small
# change a cut.
MIN_SURROUNDINGS = 3.0
SHARPNESS = 3.0
# A frame change this small is no cut, however calm the frames around it (mean brightness
# change on the coarse grid, 0-255): on the footage evaluated, titles and flashes of motion
# graphics changed it by 10 to 20, cuts between shots by 30 or more.
MIN_PEAK = 20.0
MIN_SCENE_SECONDS = 0.4


@dataclass(frozen=True)
class Comparisons:
    """Every comparison of the recording in time order; a NaN difference (across a gap) is
    none. Without frame-level measures (empty peaks), a cut is placed at its sample."""

    times: list[float]
    differences: list[float]
    peaks: list[float]
    peak_times: list[float]
    rests: list[float]


def find_cuts(comparisons: Comparisons) -> list[float]:
    """The times of the hard cuts among `comparisons` (the first new frame of each)."""
    changes = np.asarray(comparisons.differences, dtype=np.float64)
    if changes.size == 0:
        return []
    known = np.isfinite(changes)
    real = known & (changes >= MIN_CHANGE) & (changes >= RATIO * surroundings(changes))
    chosen = real & _sudden(comparisons, changes.size)
    times = comparisons.peak_times if comparisons.peaks else comparisons.times
    kept = _apart(np.flatnonzero(chosen), changes, np.asarray(times, dtype=np.float64))
    return [times[i] for i in kept]


def surroundings(changes: Floats) -> Floats:
    """The median change of each comparison's neighbours, REACH either side, itself left out
    (NaNs and the recording's ends are no neighbours), floored at MIN_SURROUNDINGS."""
    padded = np.pad(changes, REACH, constant_values=np.nan)
    windows = sliding_window_view(padded, 2 * REACH + 1).copy()
    windows[:, REACH] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # a window of NaNs only: no neighbours
        medians = np.nanmedian(windows, axis=1)
    return np.maximum(np.nan_to_num(medians, nan=MIN_SURROUNDINGS), MIN_SURROUNDINGS)


def _sudden(comparisons: Comparisons, count: int) -> npt.NDArray[np.bool_]:
    if not comparisons.peaks:
        return np.ones(count, dtype=bool)
    peaks = np.asarray(comparisons.peaks, dtype=np.float64)
    rests = np.asarray(comparisons.rests, dtype=np.float64)
    sudden: npt.NDArray[np.bool_] = (
        (peaks >= MIN_PEAK)
        & (peaks >= SHARPNESS * rests)
        & (peaks >= PEAK_RATIO * surroundings(peaks))
    )
    return sudden


def _apart(indices: npt.NDArray[np.intp], changes: Floats, times: Floats) -> list[int]:
    """The indices whose times lie MIN_SCENE_SECONDS apart, the larger change kept first."""
    kept: list[int] = []
    for index in sorted(indices.tolist(), key=lambda i: -changes[i]):
        if all(abs(times[index] - times[other]) >= MIN_SCENE_SECONDS for other in kept):
            kept.append(index)
    return sorted(kept)
