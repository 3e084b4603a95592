"""Scene cuts: where the picture changes abruptly.

Every frame must be decoded (later frames are built from earlier ones), but only about
`sample_fps` of them a second are kept, shrunk to a small grey picture. A cut is a difference
between consecutive kept pictures far larger than the recording's usual difference, and than
the usual difference nearby (so a burst of fast motion is not a string of cuts).

A span is sampled on its own (`sample_scenes`): decoding seeks to the keyframe before the last
sample ahead of the span, so the span's first sample is compared with it and a cut exactly on a
boundary is seen once, by the span it starts. `combine_scenes` decides the cuts over all spans'
samples together. The whole recording is the one-span case (`find_scene_cuts`).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation
from av.video.stream import VideoStream
from numpy.lib.stride_tricks import sliding_window_view

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.decoding import Damage, video_frames
from pipelines.media.models import SceneAnalysis, SceneSpan, Span
from pipelines.media.probe import (
    MediaSource,
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
from pipelines.media.spans import SAMPLE_FPS, WHOLE, find_gaps, index_at, lead_ins, seek_before

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
# A span is read from the keyframe before this long ahead of its sample before it (four times
# longer on each retry, if that sample turns out not to be the first frame of its slot).
LEAD_IN_SECONDS = 1.0
# Sample times within this of each other are the same sample (times are stored rounded).
_SAME_TIME = 1e-6


def find_scene_cuts(
    source: MediaSource,
    *,
    sample_fps: float = SAMPLE_FPS,
    width: int = 96,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> SceneAnalysis:
    """Find the hard cuts of the first video stream; each is the time of the first new frame."""
    part = sample_scenes(
        source,
        WHOLE,
        sample_fps=sample_fps,
        width=width,
        max_seconds=max_seconds,
        progress=progress,
    )
    return combine_scenes([part], WHOLE.end)


def sample_scenes(
    source: MediaSource,
    span: Span,
    *,
    sample_fps: float = SAMPLE_FPS,
    width: int = 96,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> SceneSpan:
    """The scene samples within `span`, decoding only about that span (and a lead-in)."""
    report = paced(progress)
    for lead_in in lead_ins(span.start, 1.0 / sample_fps + LEAD_IN_SECONDS):
        with open_media(source) as container:
            stream = first_video(container)
            if stream is None:
                raise unsupported("it has no video stream")
            stream.thread_type = "AUTO"
            sampler = FrameSampler(
                sample_fps=sample_fps,
                width=width,
                origin=stream_start(stream),
                first_slot=index_at(span.start, 1.0 / sample_fps),
            )
            part = _SpanReading(container, stream, span, sampler, max_seconds).run(lead_in, report)
        if part is not None:
            report(1.0)
            return part
    raise AssertionError("reading from the beginning always reaches the span")


def combine_scenes(
    parts: list[SceneSpan | None],
    duration_seconds: float,
    *,
    sample_fps: float = SAMPLE_FPS,
) -> SceneAnalysis:
    """The cuts among all spans' samples, decided together; a failed span (None) is a gap, and
    no cut is found across one."""
    times: list[float] = []
    differences: list[float] = []
    for part in parts:
        if part is not None and part.times:
            differences += _continuing(times, part)
            times += part.times
    rate = next((part.sample_fps for part in parts if part), sample_fps)
    return SceneAnalysis(
        sample_fps=rate,
        cuts=[round(t, 3) for t in detect_cuts(times, differences)],
        frames_examined=len(times),
        gaps=find_gaps([part.span if part else None for part in parts], duration_seconds),
    )


def _continuing(times: list[float], part: SceneSpan) -> list[float]:
    """A span's differences as they continue the samples so far. Its first compares with the
    sample before the span, which must be the last one so far; after a gap it is not, and there
    is no comparison (NaN). The recording's first sample has none either."""
    if part.previous_time is None:
        return [math.nan, *part.differences] if times else part.differences
    if not times:
        return part.differences[1:]
    if abs(times[-1] - part.previous_time) < _SAME_TIME:
        return part.differences
    return [math.nan, *part.differences[1:]]


class _SpanReading:
    """One attempt at a span: seek `lead_in` seconds before it (None: read from the beginning),
    then sample until the span ends. Gives up (None) if decoding began too late to be sure the
    sample before the span is the first frame of its slot, as decoding from the start keeps."""

    def __init__(
        self,
        container: InputContainer,
        stream: VideoStream,
        span: Span,
        sampler: FrameSampler,
        max_seconds: float,
    ) -> None:
        self.container, self.stream, self.span, self.sampler = container, stream, span, sampler
        self.origin = stream_start(stream)
        self.end_slot = index_at(span.end, 1.0 / sampler.sample_fps)
        self.clock = TimeCheck(max_seconds)
        declared = stream_seconds(stream) or container_seconds(container) or 0.0
        self.expected = min(span.end, declared) - span.start

    def run(self, lead_in: float | None, report: Progress) -> SceneSpan | None:
        sought = lead_in is not None and seek_before(
            self.container, self.stream, self.origin + self.span.start - lead_in
        )
        sampler, first, damage = self.sampler, None, Damage(self.origin)
        for frame in video_frames(self.container, self.stream, damage):
            if frame.time is None:
                continue  # Without a timestamp a frame cannot be placed on the time line.
            # Kept pictures grow with the frames' times: bound them by the frames, not headers.
            time = frame.time - self.origin
            self.clock.frame_at(time)
            slot = sampler.slot(time)
            first = slot if first is None else first
            entering = slot >= sampler.first_slot and not sampler.times
            if entering and sought and not sampler.sure_of_previous(first):
                return None
            if slot >= self.end_slot:
                break
            sampler.offer(frame)
            if self.expected > 0:
                report((time - self.span.start) / self.expected)
        return sampler.result(self.span).model_copy(
            update={"undecodable": damage.within(self.span)}
        )


class FrameSampler:
    """Keeps the first frame of each 1/sample_fps slot, as a small grey picture, and measures
    how much it differs from the previous one kept. Only that previous picture is held.

    Samples before `first_slot` (a span's lead-in) are kept only as that previous picture."""

    def __init__(
        self, *, sample_fps: float, width: int, origin: float = 0.0, first_slot: int = 0
    ) -> None:
        self.sample_fps = sample_fps
        self.width = width
        self.origin = origin
        self.first_slot = first_slot
        self.times: list[float] = []
        self.differences: list[float] = []
        self.last_time: float | None = None
        self.previous_time: float | None = None
        self._last_slot: int | None = None
        self._previous: npt.NDArray[np.int16] | None = None

    def slot(self, time: float) -> int:
        """The sample slot a time (from the stream's start) falls in."""
        return math.floor(time * self.sample_fps + 1e-6)

    def offer(self, frame: VideoFrame) -> None:
        if frame.time is None:
            return  # Without a timestamp a frame cannot be placed on the time line.
        time = self.last_time = frame.time - self.origin
        slot = self.slot(time)
        if self._last_slot is not None and slot <= self._last_slot:
            return
        self._last_slot = slot
        picture = self._shrink(frame)
        if slot >= self.first_slot:
            if self._previous is not None:
                self.differences.append(round(float(np.abs(picture - self._previous).mean()), 4))
            self.times.append(round(time, 6))
        else:
            self.previous_time = round(time, 6)
        self._previous = picture

    def sure_of_previous(self, first_slot_decoded: int) -> bool:
        """Whether the sample before `first_slot` is the first frame of its slot: decoding must
        have begun in an earlier slot (or there must be no sample before, from the start)."""
        return self._last_slot is not None and first_slot_decoded < self._last_slot

    def result(self, span: Span) -> SceneSpan:
        """The samples within the span, each with its difference from the one before it."""
        return SceneSpan(
            span=span,
            sample_fps=self.sample_fps,
            times=self.times,
            differences=self.differences,
            previous_time=self.previous_time if self.times else None,
        )

    def _shrink(self, frame: VideoFrame) -> npt.NDArray[np.int16]:
        height = max(2, round(self.width * frame.height / max(frame.width, 1)))
        grey = frame.reformat(
            width=self.width, height=height, format="gray", interpolation=Interpolation.AREA
        )
        return grey.to_ndarray().astype(np.int16)


def detect_cuts(times: list[float], differences: list[float]) -> list[float]:
    """Times of the kept frames that differ from the one before far more than is usual; a NaN
    difference (across a gap) is no comparison, never a cut."""
    diffs = np.asarray(differences, dtype=np.float64)
    known = np.isfinite(diffs)
    if not known.any():
        return []
    median = float(np.median(diffs[known]))
    spread = max(MIN_SPREAD, 1.4826 * float(np.median(np.abs(diffs[known] - median))))
    threshold = np.maximum(MIN_CUT_DIFFERENCE, median + CUT_SIGMAS * spread)
    # Across a gap the neighbourhood takes the usual difference instead.
    local = LOCAL_RATIO * local_median(np.where(known, diffs, median), LOCAL_SAMPLES)
    is_cut = known & (diffs >= threshold) & (diffs >= local)
    # differences[i] compares kept frame i with kept frame i + 1: the cut shows at i + 1.
    return [times[i + 1] for i in np.flatnonzero(is_cut).tolist()]


def local_median(values: Floats, reach: int) -> Floats:
    """The median of each value's neighbourhood, `reach` samples either side."""
    padded = np.pad(values, reach, mode="edge")
    medians: Floats = np.median(sliding_window_view(padded, 2 * reach + 1), axis=1)
    return medians
