"""Scene samples span by span: cuts planted on the boundaries (and a sample either side) are
found once, where the whole-recording analysis finds them, in MP4 (index first or last) and
Matroska; a failed span is a gap no cut is found across."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from av.container import InputContainer
from av.stream import Stream

from pipelines.media import scenes
from pipelines.media.models import SceneAnalysis, SceneSpan, Span
from pipelines.media.scenes import combine_scenes, find_scene_cuts, sample_scenes
from pipelines.media.spans import seek_before
from tests.pipelines.media.recordings import index_last, make_slideshow, make_vod

DURATION = 96.0
SPANS = [Span(start=start, end=min(start + 16.0, DURATION)) for start in range(0, 96, 16)]
# Cuts on a boundary (16 s), a sample (0.25 s) before one and after one, a frame before one
# (63.9 s: the first new picture is sampled at 64 s, the next span's first sample, and the
# frame itself lies in the span before), and between.
CUTS = [8.0, 16.0, 31.75, 40.0, 48.25, 63.9, 72.5, 88.0]
# Where each cut is found: its first new frame (10 a second).
SEEN = [8.0, 16.0, 31.8, 40.0, 48.3, 63.9, 72.5, 88.0]


def vod(folder: Path, suffix: str) -> Path:
    return make_vod(folder / f"vod{suffix}", duration_seconds=DURATION, cuts_at=CUTS)


MAKERS: dict[str, Callable[[Path], Path]] = {
    "mp4": lambda folder: vod(folder, ".mp4"),
    "mp4-index-last": lambda folder: index_last(vod(folder, ".mp4"), folder / "last.mp4"),
    "mkv": lambda folder: vod(folder, ".mkv"),
}


@pytest.fixture(scope="module", params=sorted(MAKERS))
def recording(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return MAKERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def whole(recording: Path) -> SceneAnalysis:
    return find_scene_cuts(recording)


@pytest.fixture(scope="module")
def parts(recording: Path) -> list[SceneSpan | None]:
    return [sample_scenes(recording, span) for span in SPANS]


def test_each_cut_on_or_beside_a_boundary_is_found_once_where_the_whole_analysis_finds_it(
    whole: SceneAnalysis, parts: list[SceneSpan | None]
) -> None:
    combined = combine_scenes(parts, DURATION)

    assert combined.cuts == SEEN
    assert combined.cuts == whole.cuts
    assert combined.frames_examined == whole.frames_examined == DURATION * 4
    assert combined.gaps == []


def test_a_span_holds_its_samples_and_compares_the_first_with_the_one_before_it(
    parts: list[SceneSpan | None],
) -> None:
    for span, part in zip(SPANS, parts, strict=True):
        assert part is not None
        assert all(span.start <= time < span.end for time in part.times)
        assert len(part.times) == (span.end - span.start) * 4
        expected_previous = None if span.start == 0 else span.start - 0.2
        assert part.previous_time == pytest.approx(expected_previous)


def test_a_file_object_reads_as_the_file_does(recording: Path) -> None:
    span = SPANS[4]

    with recording.open("rb") as file:
        read = sample_scenes(file, span)

    assert read == sample_scenes(recording, span)


def test_no_cut_is_found_across_a_gap(parts: list[SceneSpan | None]) -> None:
    # 32 to 48 s fails: the scene before it (cut at 31.75 s) differs from the one after it
    # (cut at 40 s), yet no cut may show at 48 s.
    failed = SPANS[2]
    with_gap = [None if part and part.span == failed else part for part in parts]

    combined = combine_scenes(with_gap, DURATION)

    assert combined.gaps == [failed]
    assert combined.cuts == [cut for cut in SEEN if not failed.start <= cut < failed.end]
    assert combined.frames_examined == (DURATION - 16) * 4


def test_a_leading_gap_leaves_the_first_sample_after_it_uncompared(
    parts: list[SceneSpan | None],
) -> None:
    combined = combine_scenes([None, *parts[1:]], DURATION)

    assert combined.gaps == [SPANS[0]]
    assert combined.cuts == [cut for cut in SEEN if cut > 16.0]


def test_when_every_span_fails_there_is_nothing_but_a_gap() -> None:
    combined = combine_scenes([None, None, None], 40.0)

    assert combined.gaps == [Span(start=0.0, end=40.0)]
    assert (combined.cuts, combined.frames_examined) == ([], 0)


def test_pictures_sparser_than_the_lead_in_are_still_compared_across_boundaries(
    tmp_path: Path,
) -> None:
    # A picture every 5 s: each span's first sample must be compared with the picture up to
    # 5 s before the span, which the first lead-in does not reach.
    slides = make_slideshow(
        tmp_path / "slides.mkv", duration_seconds=DURATION, every_seconds=5, cuts_at=[18.0, 47.0]
    )

    combined = combine_scenes([sample_scenes(slides, span) for span in SPANS], DURATION)

    assert combined == find_scene_cuts(slides)
    assert combined.cuts == [20.0, 50.0]


@pytest.mark.parametrize("lateness", [3.0, 30.0])
def test_a_seek_that_lands_after_the_span_starts_is_tried_again_from_further_back(
    recording: Path, parts: list[SceneSpan | None], monkeypatch: pytest.MonkeyPatch, lateness: float
) -> None:
    # Some formats seek by guessing from the bit rate; here every seek lands late, within the
    # span or past its end.
    def late(container: InputContainer, stream: Stream, seconds: float) -> bool:
        return seek_before(container, stream, seconds + lateness)

    monkeypatch.setattr(scenes, "seek_before", late)

    assert sample_scenes(recording, SPANS[1]) == parts[1]


def test_progress_rises_to_one_over_the_span(recording: Path) -> None:
    seen: list[float] = []

    sample_scenes(recording, SPANS[2], progress=seen.append)

    assert seen[-1] == 1.0
    assert seen == sorted(seen)
