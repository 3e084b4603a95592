"""Span plans: 5 to 10 minutes each by the cost of the pictures, boundaries on the shared grid."""

from __future__ import annotations

from fractions import Fraction
from itertools import pairwise

import pytest

from pipelines.media.models import MediaInfo, Span, VideoInfo
from pipelines.media.spans import (
    MAX_SPAN_SECONDS,
    MIN_SPAN_SECONDS,
    find_gaps,
    grid_seconds,
    lead_ins,
    plan_spans,
)


def media(duration: float, video: tuple[int, int, float] | None = None) -> MediaInfo:
    info = None
    if video is not None:
        width, height, fps = video
        info = VideoInfo(codec="h264", width=width, height=height, fps=fps)
    return MediaInfo(
        format_name="mp4",
        duration_seconds=duration,
        has_audio=True,
        has_video=info is not None,
        video=info,
    )


def lengths(spans: list[Span]) -> list[float]:
    return [span.end - span.start for span in spans]


@pytest.mark.parametrize(
    ("video", "shortest", "longest"),
    [
        (None, 540.0, 660.0),
        ((1280, 720, 30.0), 540.0, 660.0),
        ((1920, 1080, 30.0), 250.0, 350.0),
        ((1920, 1080, 60.0), 270.0, 330.0),
    ],
    ids=["audio", "720p30", "1080p30", "1080p60"],
)
def test_spans_cover_the_recording_and_shorten_for_heavier_video(
    video: tuple[int, int, float] | None, shortest: float, longest: float
) -> None:
    recording = media(4 * 3600 + 12.34, video)

    spans = plan_spans(recording)

    assert spans[0].start == 0.0
    assert spans[-1].end == recording.duration_seconds
    assert all(a.end == b.start for a, b in pairwise(spans))
    assert shortest <= min(lengths(spans)) <= max(lengths(spans)) <= longest


def test_every_boundary_is_a_whole_number_of_windows_and_of_sample_intervals() -> None:
    spans = plan_spans(media(7 * 3600 + 0.7, (1920, 1080, 60.0)), sample_fps=1.5)

    for span in spans[1:]:
        assert (span.start / 0.5).is_integer()
        assert (span.start * 1.5).is_integer()


def test_a_short_recording_is_one_span() -> None:
    assert plan_spans(media(812.5)) == [Span(start=0.0, end=812.5)]
    assert plan_spans(media(3.0, (640, 360, 25.0))) == [Span(start=0.0, end=3.0)]


def test_the_heaviest_video_still_gets_spans_of_five_minutes() -> None:
    spans = plan_spans(media(3600.0, (7680, 4320, 120.0)))

    assert min(lengths(spans)) >= MIN_SPAN_SECONDS - 1.0
    assert max(lengths(plan_spans(media(3600.0)))) <= MAX_SPAN_SECONDS + 1.0


def test_the_grid_is_the_least_common_multiple_of_window_and_interval() -> None:
    assert grid_seconds(0.5, 4.0) == 1
    assert grid_seconds(0.5, 1.5) == 2
    assert grid_seconds(0.3, 4.0) == Fraction(3)
    with pytest.raises(ValueError, match="no grid"):
        grid_seconds(0.123, 3.77)


def test_failed_spans_leave_gaps_from_their_neighbours_to_the_ends() -> None:
    spans: list[Span | None] = [
        None,
        Span(start=10, end=20),
        None,
        None,
        Span(start=40, end=50),
        None,
    ]

    gaps = find_gaps(spans, duration_seconds=57.5)

    assert gaps == [Span(start=0, end=10), Span(start=20, end=40), Span(start=50, end=57.5)]


def test_lead_ins_grow_until_reading_from_the_beginning() -> None:
    assert list(lead_ins(100.0, 2.0)) == [2.0, 8.0, 32.0, None]
    assert list(lead_ins(0.0, 2.0)) == [None]
