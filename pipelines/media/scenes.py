"""Scene cuts: where the picture changes abruptly.

Every frame must be decoded (later frames are built from earlier ones), but only about
`sample_fps` of them a second are kept, shrunk to a small grey picture. A cut is a difference
between consecutive kept pictures far larger than the recording's usual difference, and than
the usual difference nearby (so a burst of fast motion is not a string of cuts).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation
from numpy.lib.stride_tricks import sliding_window_view

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.models import SceneAnalysis
from pipelines.media.probe import (
    Progress,
    TimeCheck,
    container_seconds,
    first_video,
    open_media,
    paced,
    stream_seconds,
    stream_start,
    unsupported,
)

Floats = npt.NDArray[np.float64]

# A cut changes the picture by at least this much: mean absolute grey difference, 0 to 255.
MIN_CUT_DIFFERENCE = 10.0
# ... and lies this many robust standard deviations above the recording's median difference
# (the spread is floored, or a still picture would make any flicker a cut) ...
CUT_SIGMAS = 6.0
MIN_SPREAD = 1.0
# ... and is this many times the median difference of the samples around it.
LOCAL_RATIO = 3.0
LOCAL_SAMPLES = 8


def find_scene_cuts(
    path: Path,
    *,
    sample_fps: float = 4.0,
    width: int = 96,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> SceneAnalysis:
    """Find the hard cuts of the first video stream; each is the time of the first new frame."""
    report = paced(progress)
    with open_media(path) as container:
        stream = first_video(container)
        if stream is None:
            raise unsupported("it has no video stream")
        stream.thread_type = "AUTO"
        expected = stream_seconds(stream) or container_seconds(container) or 0.0
        origin = stream_start(stream)
        sampler = FrameSampler(sample_fps=sample_fps, width=width, origin=origin)
        clock = TimeCheck(max_seconds)
        for frame in container.decode(stream):
            # Kept pictures grow with the frames' times: bound them by the frames, not headers.
            if frame.time is not None:
                clock.frame_at(frame.time - origin)
            sampler.offer(frame)
            if expected > 0 and sampler.last_time is not None:
                report(sampler.last_time / expected)
    report(1.0)
    times, differences = sampler.result()
    return SceneAnalysis(
        sample_fps=sample_fps,
        cuts=[round(t, 3) for t in detect_cuts(times, differences)],
        frames_examined=len(times),
    )


class FrameSampler:
    """Keeps the first frame of each 1/sample_fps slot, as a small grey picture, and measures
    how much it differs from the previous one kept. Only that previous picture is held."""

    def __init__(self, *, sample_fps: float, width: int, origin: float = 0.0) -> None:
        self.sample_fps = sample_fps
        self.width = width
        self.origin = origin
        self.times: list[float] = []
        self.differences: list[float] = []
        self.last_time: float | None = None
        self._last_slot: int | None = None
        self._previous: npt.NDArray[np.int16] | None = None

    def offer(self, frame: VideoFrame) -> None:
        if frame.time is None:
            return  # Without a timestamp a frame cannot be placed on the time line.
        time = self.last_time = frame.time - self.origin
        slot = math.floor(time * self.sample_fps + 1e-6)
        if self._last_slot is not None and slot <= self._last_slot:
            return
        self._last_slot = slot
        picture = self._shrink(frame)
        if self._previous is not None:
            self.differences.append(float(np.abs(picture - self._previous).mean()))
        self._previous = picture
        self.times.append(time)

    def result(self) -> tuple[list[float], list[float]]:
        """Times of the kept frames, and the difference of each from the one before it."""
        return self.times, self.differences

    def _shrink(self, frame: VideoFrame) -> npt.NDArray[np.int16]:
        height = max(2, round(self.width * frame.height / max(frame.width, 1)))
        grey = frame.reformat(
            width=self.width, height=height, format="gray", interpolation=Interpolation.AREA
        )
        return grey.to_ndarray().astype(np.int16)


def detect_cuts(times: list[float], differences: list[float]) -> list[float]:
    """Times of the kept frames that differ from the one before far more than is usual."""
    if not differences:
        return []
    diffs = np.asarray(differences, dtype=np.float64)
    median = float(np.median(diffs))
    spread = max(MIN_SPREAD, 1.4826 * float(np.median(np.abs(diffs - median))))
    threshold = np.maximum(MIN_CUT_DIFFERENCE, median + CUT_SIGMAS * spread)
    local = LOCAL_RATIO * local_median(diffs, LOCAL_SAMPLES)
    is_cut = (diffs >= threshold) & (diffs >= local)
    # differences[i] compares kept frame i with kept frame i + 1: the cut shows at i + 1.
    return [times[i + 1] for i in np.flatnonzero(is_cut).tolist()]


def local_median(values: Floats, reach: int) -> Floats:
    """The median of each value's neighbourhood, `reach` samples either side."""
    padded = np.pad(values, reach, mode="edge")
    medians: Floats = np.median(sliding_window_view(padded, 2 * reach + 1), axis=1)
    return medians
