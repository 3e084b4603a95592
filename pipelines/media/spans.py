"""Spans: the stretches of a recording that the analyses measure one at a time, so that a stage
can fan them out over many processor instances and reduce their results.

Every boundary between spans lies on a grid that is a multiple of both the loudness window and
the scene sample interval, and each analysis counts its windows and samples on one grid for the
whole recording: a window or a sample belongs to the span it starts in, so per-span series
concatenate into exactly the series of the whole recording. Reading a span seeks to a little
before its start (a lead-in): audio decoders need a few frames to settle, and the first scene
sample is compared with the last one before the span.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from fractions import Fraction
from itertools import pairwise

import av
from av.container import InputContainer
from av.stream import Stream

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.models import MediaInfo, Span

# The analyses' defaults, which the grid must fit: a loudness window (one momentary block of
# BS.1770), scene samples a second.
WINDOW_SECONDS = 0.4
SAMPLE_FPS = 4.0
# Spans last at most this long: ten minutes of audio, or of video up to 720p30, takes well under
# a minute on one vCPU ...
MAX_SPAN_SECONDS = 600.0
# ... and at least this long however heavy the video, since every span pays a fixed overhead
# (its messages, lease and writes, and the container's index read again).
MIN_SPAN_SECONDS = 300.0
# Video decoding costs about its pixels a second: up to 720p30 spans are longest, heavier video
# gets proportionally shorter ones (1080p60, 4.5 times the pixels, the shortest).
LIGHT_PIXELS_PER_SECOND = 1280 * 720 * 30
# A recording up to this many spans long is one span: two short items cost more than they save.
ONE_SPAN_FACTOR = 1.5
# A span past the end of any recording the analyses take on: the whole of it. Reading stops at
# the end of the file, or fails on a frame past the length allowed, before reaching its end.
WHOLE = Span(start=0.0, end=2 * MEDIA_SECONDS_CEILING)
# Floating-point slack when a time is turned into a window or sample index.
_INDEX_SLACK = 1e-9


def plan_spans(
    media: MediaInfo,
    *,
    window_seconds: float = WINDOW_SECONDS,
    sample_fps: float = SAMPLE_FPS,
    target_seconds: float | None = None,
) -> list[Span]:
    """Spans covering the recording, about equal, each 5 to 10 minutes long (shorter for heavier
    video) or about `target_seconds` if given, with every boundary on the grid of
    `grid_seconds`; a short recording is one span."""
    duration = media.duration_seconds
    target = target_seconds or span_seconds(media)
    if duration <= ONE_SPAN_FACTOR * target:
        return [Span(start=0.0, end=duration)]
    step = grid_seconds(window_seconds, sample_fps)
    count = round(duration / target)
    inner = [float(round(Fraction(duration * i / count) / step) * step) for i in range(1, count)]
    bounds = [0.0, *inner, duration]
    return [Span(start=a, end=b) for a, b in pairwise(bounds)]


def span_seconds(media: MediaInfo) -> float:
    """How long the spans of `media` should be, from how costly its pictures are to decode."""
    video = media.video
    if not media.has_video or video is None:
        return MAX_SPAN_SECONDS
    pixels_per_second = video.width * video.height * max(video.fps, 1.0)
    scaled = MAX_SPAN_SECONDS * LIGHT_PIXELS_PER_SECOND / max(pixels_per_second, 1.0)
    return min(MAX_SPAN_SECONDS, max(MIN_SPAN_SECONDS, scaled))


def grid_seconds(window_seconds: float, sample_fps: float) -> Fraction:
    """The shortest time that is a whole number of loudness windows, of sample intervals and of
    seconds (so boundaries read plainly)."""
    window = Fraction(window_seconds).limit_denominator(1000)
    interval = 1 / Fraction(sample_fps).limit_denominator(1000)
    step = Fraction(
        math.lcm(window.numerator, interval.numerator, 1),
        math.gcd(window.denominator, interval.denominator, 1),
    )
    if step > MIN_SPAN_SECONDS / 10:
        raise ValueError(f"windows of {window_seconds} s and {sample_fps} samples/s share no grid")
    return step


def index_at(seconds: float, step_seconds: float) -> int:
    """The first index on a grid of `step_seconds` whose time is at or after `seconds`."""
    return max(0, math.ceil(seconds / step_seconds - _INDEX_SLACK))


def find_gaps(spans: list[Span | None], duration_seconds: float) -> list[Span]:
    """What the failed spans (None) leave uncovered: each run of them stretches from the end of
    the span before it (or 0) to the start of the span after it (or the end of the recording)."""
    gaps = []
    index = 0
    while index < len(spans):
        if spans[index] is not None:
            index += 1
            continue
        last = index
        while last + 1 < len(spans) and spans[last + 1] is None:
            last += 1
        before, after = _span(spans, index - 1), _span(spans, last + 1)
        start = before.end if before is not None else 0.0
        end = after.start if after is not None else duration_seconds
        gaps.append(Span(start=start, end=max(start, end)))
        index = last + 1
    return gaps


def _span(spans: list[Span | None], index: int) -> Span | None:
    return spans[index] if 0 <= index < len(spans) else None


def lead_ins(start: float, first: float) -> Iterator[float | None]:
    """How far before `start` to seek, try after try: `first`, four times more on each retry,
    and at last None (read from the beginning, which always does)."""
    lead = first
    while lead < start:
        yield lead
        lead *= 4
    yield None


def seek_before(container: InputContainer, stream: Stream, seconds: float) -> bool:
    """Seek to a keyframe at or before `seconds` (the streams' own timestamps); False if the
    format cannot seek, when reading starts from the beginning instead.

    The seek goes by the video's keyframes when there is video, whichever stream is read:
    containers index them (Matroska's cues index nothing else, and seeking its audio reads the
    file from the last indexed cluster on); audio then starts from the keyframe's time too."""
    by = next(iter(container.streams.video), stream)
    if by.time_base is None:
        return False
    try:
        container.seek(max(0, math.floor(seconds / by.time_base)), stream=by)
    except av.FFmpegError:
        return False
    return True
