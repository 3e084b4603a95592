"""Scene cuts: where the picture changes abruptly.

Every frame must be decoded (later frames are built from earlier ones). Each gets a cheap
signature (`pictures.signature`) compared with the frame before; about `sample_fps` frames a
second are also kept as samples, whose colours and brightness (`pictures.look`) are compared
with the sample before. `cuts.find_cuts` decides which comparisons are hard cuts, and places
each on its first new frame.

A span is sampled on its own (`sample_scenes`): decoding seeks to the keyframe before the last
sample ahead of the span, so the span's first sample is compared with it and a cut exactly on a
boundary is seen once, by the span it starts. `combine_scenes` decides the cuts over all spans'
comparisons together. The whole recording is the one-span case (`find_scene_cuts`).
"""

from __future__ import annotations

import math

import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.cuts import Comparisons, find_cuts
from pipelines.media.models import SceneAnalysis, SceneSpan, SceneTail, Span
from pipelines.media.pictures import LOOK_WIDTH, Look, Picture, difference, jump, look, signature
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

# A span is read from the keyframe before this long ahead of its sample before it (four times
# longer on each retry, if that sample turns out not to be the first frame of its slot).
LEAD_IN_SECONDS = 1.0
# Sample times within this of each other are the same sample (times are stored rounded).
_SAME_TIME = 1e-6


def find_scene_cuts(
    source: MediaSource,
    *,
    sample_fps: float = SAMPLE_FPS,
    width: int = LOOK_WIDTH,
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
    width: int = LOOK_WIDTH,
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
    joined = Comparisons(times=[], differences=[], peaks=[], peak_times=[], rests=[])
    for part in parts:
        if part is not None and part.times:
            _continue(joined, times, part)
            times += part.times
    last = parts[-1] if parts else None
    if last is not None and last.tail is not None:
        _append(joined, last.tail.time, last.tail.difference, *_tail_frames(last.tail))
    rate = next((part.sample_fps for part in parts if part), sample_fps)
    return SceneAnalysis(
        sample_fps=rate,
        cuts=[round(t, 3) for t in find_cuts(joined)],
        frames_examined=len(times),
        gaps=find_gaps([part.span if part else None for part in parts], duration_seconds),
    )


def _continue(joined: Comparisons, times: list[float], part: SceneSpan) -> None:
    """Append a span's comparisons as they continue the samples so far. Its first compares
    with the sample before the span, which must be the last one so far; after a gap it is not,
    and there is no comparison (NaN). The recording's first sample has none either."""
    rows = list(zip(part.differences, part.peaks, part.peak_times, part.rests, strict=True))
    compared = part.times[-len(rows) :] if rows else []
    if part.previous_time is not None and times:
        if abs(times[-1] - part.previous_time) >= _SAME_TIME:
            rows[0] = (math.nan, 0.0, compared[0], 0.0)
    elif part.previous_time is not None:
        rows, compared = rows[1:], compared[1:]
    elif times:
        _append(joined, part.times[0], math.nan, 0.0, part.times[0], 0.0)
    for time, row in zip(compared, rows, strict=True):
        _append(joined, time, *row)


def _append(
    joined: Comparisons, time: float, change: float, peak: float, peak_time: float, rest: float
) -> None:
    joined.times.append(time)
    joined.differences.append(change)
    joined.peaks.append(peak)
    joined.peak_times.append(peak_time)
    joined.rests.append(rest)


def _tail_frames(tail: SceneTail) -> tuple[float, float, float]:
    return tail.peak, tail.peak_time, tail.rest


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
        sampler, first = self.sampler, None
        for frame in self.container.decode(self.stream):
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
        else:
            sampler.reached_end = True
        return sampler.result(self.span)


class FrameSampler:
    """Keeps the first frame of each 1/sample_fps slot as a sample, and measures how much its
    look differs from the previous sample's; every frame's signature is compared with the frame
    before it, so each comparison also knows where between the two samples the picture changed
    most, and how much the other frames changed. Only the previous sample's look, the previous
    frame's signature and the frame changes since that sample are held.

    Samples before `first_slot` (a span's lead-in) are kept only as that previous sample."""

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
        self._signature: Picture | None = None
        self._changes: list[tuple[float, float]] = []  # (frame change, time) since the sample
        self._latest: VideoFrame | None = None  # the last frame offered after the last sample

    def slot(self, time: float) -> int:
        """The sample slot a time (from the stream's start) falls in."""
        return math.floor(time * self.sample_fps + 1e-6)

    def offer(self, frame: VideoFrame) -> None:
        if frame.time is None:
            return  # Without a timestamp a frame cannot be placed on the time line.
        time = self.last_time = frame.time - self.origin
        current = signature(frame)
        if self._signature is not None:
            self._changes.append((jump(self._signature, current), round(time, 6)))
        self._signature = current
        slot = self.slot(time)
        if self._last_slot is not None and slot <= self._last_slot:
            self._latest = frame
            return
        self._last_slot, self._latest = slot, None
        self._sample(frame, time, slot)

    def _sample(self, frame: VideoFrame, time: float, slot: int) -> None:
        current = look(frame, self.width)
        if slot < self.first_slot:
            self.previous_time = round(time, 6)
        else:
            if self._look is not None:
                self._compare(difference(self._look, current), time)
            self.times.append(round(time, 6))
        self._look, self._changes = current, []

    def _compare(self, change: float, time: float) -> None:
        peak, peak_time, rest = self._frame_changes(time)
        self.differences.append(change)
        self.peaks.append(peak)
        self.peak_times.append(peak_time)
        self.rests.append(rest)

    def _frame_changes(self, time: float) -> tuple[float, float, float]:
        """The largest frame change since the last sample, the frame after it, and the median
        of the others (0 when there are none; the sample itself without frame changes)."""
        if not self._changes:
            return 0.0, round(time, 6), 0.0
        changes = [change for change, _ in self._changes]
        top = int(np.argmax(changes))
        others = changes[:top] + changes[top + 1 :]
        rest = float(np.median(others)) if others else 0.0
        return round(changes[top], 4), self._changes[top][1], round(rest, 4)

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
        if not self.reached_end or self._latest is None or self._look is None or not self.times:
            return None
        time = self._latest.time
        assert time is not None  # offer() keeps only frames with a time
        peak, peak_time, rest = self._frame_changes(time - self.origin)
        change = difference(self._look, look(self._latest, self.width))
        return SceneTail(
            time=round(time - self.origin, 6),
            difference=change,
            peak=peak,
            peak_time=peak_time,
            rest=rest,
        )
