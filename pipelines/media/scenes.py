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

from av.container import InputContainer
from av.video.stream import VideoStream

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.cuts import Comparisons, find_cuts
from pipelines.media.decoding import Damage, video_frames
from pipelines.media.models import SceneAnalysis, SceneSpan, SceneTail, Span
from pipelines.media.pictures import LOOK_WIDTH
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
from pipelines.media.sampler import FrameSampler
from pipelines.media.spans import SAMPLE_FPS, WHOLE, find_gaps, index_at, lead_ins, seek_before

# A span is read from the keyframe before this long ahead of its sample before it (four times
# longer on each retry, if that sample turns out not to be the first frame of its slot).
LEAD_IN_SECONDS = 1.0
# Cuts need no picture finer than a coarse grid: skip the deblocking filter (H.264, HEVC, VP8)
# and allow the decoder's speed-ups that do not follow the standard to the letter.
FAST_DECODING = {"skip_loop_filter": "all", "flags2": "fast"}
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
            # On top of open_media's: its limits on picture size and refusal of damage stay.
            stream.codec_context.options = {**stream.codec_context.options, **FAST_DECODING}
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
        else:
            sampler.reached_end = True
        return sampler.result(self.span).model_copy(
            update={"undecodable": damage.within(self.span)}
        )
