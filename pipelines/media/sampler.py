"""The scene analysis's samples of one stretch of video, taken as its frames are decoded.

The first frame of each 1/sample_fps slot is a sample; its look (`pictures.look`) is compared
with the sample before. Where they differ enough to be a cut (MIN_CHANGE), the frames in between
are compared one with the next (`pictures.signature`), which tells where the picture changed
most (the first new frame) and how much the other frames changed: the frame-accurate second
stage, paid for only where a cut is possible. So the frames since the last sample are held
until the next one (a fraction of a second of pictures), and nothing else grows.
"""

from __future__ import annotations

import math

import numpy as np
from av.video.frame import VideoFrame

from pipelines.media.cuts import MIN_CHANGE
from pipelines.media.models import SceneSpan, SceneTail, Span
from pipelines.media.pictures import Look, Picture, difference, jump, look, signature


class FrameSampler:
    """Keeps the first frame of each slot as a sample and compares it with the one before;
    where they differ by MIN_CHANGE or more, also measures the frame changes between them (else
    the peak and rest are 0 and the peak time is the sample's).

    Samples before `first_slot` (a span's lead-in) are kept only as the previous sample."""

    def __init__(
        self, *, sample_fps: float, width: int, origin: float = 0.0, first_slot: int = 0
    ) -> None:
        self.sample_fps = sample_fps
        self.width = width
        self.origin = origin
        self.first_slot = first_slot
        self.times: list[float] = []
        self.differences: list[float] = []
        self.peaks: list[float] = []
        self.peak_times: list[float] = []
        self.rests: list[float] = []
        self.last_time: float | None = None
        self.previous_time: float | None = None
        self.reached_end = False
        self._last_slot: int | None = None
        self._look: Look | None = None
        self._signature: Picture | None = None  # the last sample's
        self._between: list[VideoFrame] = []  # the frames since the last sample

    def slot(self, time: float) -> int:
        """The sample slot a time (from the stream's start) falls in."""
        return math.floor(time * self.sample_fps + 1e-6)

    def offer(self, frame: VideoFrame) -> None:
        if frame.time is None:
            return  # Without a timestamp a frame cannot be placed on the time line.
        time = self.last_time = frame.time - self.origin
        slot = self.slot(time)
        if self._last_slot is not None and slot <= self._last_slot:
            self._between.append(frame)
            return
        self._last_slot = slot
        current = look(frame, self.width)
        if slot < self.first_slot:
            self.previous_time = round(time, 6)
        else:
            if self._look is not None:
                self._compare(difference(self._look, current), frame)
            self.times.append(round(time, 6))
        self._look, self._signature, self._between = current, signature(frame), []

    def _compare(self, change: float, frame: VideoFrame) -> None:
        peak, peak_time, rest = self._frame_changes(change, [*self._between, frame])
        self.differences.append(change)
        self.peaks.append(peak)
        self.peak_times.append(peak_time)
        self.rests.append(rest)

    def _frame_changes(self, change: float, frames: list[VideoFrame]) -> tuple[float, float, float]:
        """The largest change from one frame to the next from the last sample through `frames`,
        the time of the frame after it, and the median of the other changes (0 if none)."""
        if change < MIN_CHANGE or self._signature is None:
            return 0.0, round(_time(frames[-1]) - self.origin, 6), 0.0
        before, changes = self._signature, []
        for later in frames:
            after = signature(later)
            changes.append(jump(before, after))
            before = after
        top = int(np.argmax(changes))
        others = changes[:top] + changes[top + 1 :]
        rest = float(np.median(others)) if others else 0.0
        peak_time = round(_time(frames[top]) - self.origin, 6)
        return round(changes[top], 4), peak_time, round(rest, 4)

    def sure_of_previous(self, first_slot_decoded: int) -> bool:
        """Whether the sample before `first_slot` is the first frame of its slot: decoding must
        have begun in an earlier slot (or there must be no sample before, from the start)."""
        return self._last_slot is not None and first_slot_decoded < self._last_slot

    def result(self, span: Span) -> SceneSpan:
        """The samples within the span, each compared with the one before it."""
        return SceneSpan(
            span=span,
            sample_fps=self.sample_fps,
            times=self.times,
            differences=self.differences,
            peaks=self.peaks,
            peak_times=self.peak_times,
            rests=self.rests,
            previous_time=self.previous_time if self.times else None,
            tail=self._tail(),
        )

    def _tail(self) -> SceneTail | None:
        """The last frame compared with the last sample, when reading reached the end of the
        recording: a cut after the last sample is seen too."""
        if not self.reached_end or not self._between or self._look is None or not self.times:
            return None
        last = self._between[-1]
        change = difference(self._look, look(last, self.width))
        peak, peak_time, rest = self._frame_changes(change, self._between)
        return SceneTail(
            time=round(_time(last) - self.origin, 6),
            difference=change,
            peak=peak,
            peak_time=peak_time,
            rest=rest,
        )


def _time(frame: VideoFrame) -> float:
    assert frame.time is not None  # offer() keeps only frames with a time
    return frame.time
