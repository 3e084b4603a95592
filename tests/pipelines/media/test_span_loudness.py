"""Loudness span by span: the series and the whole recording's measures (integrated loudness,
loudness range) come out as the whole-recording analysis gives them, bursts and silences planted
on the boundaries are found once, in every container; a failed span is a gap, never a silence
or a burst."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from av.container import InputContainer
from av.stream import Stream

from pipelines.media import audio
from pipelines.media.audio import (
    analyse_audio,
    combine_loudness,
    measure_loudness,
)
from pipelines.media.loudness import FLOOR_LUFS
from pipelines.media.models import AudioAnalysis, LoudnessSpan, Span
from pipelines.media.spans import seek_before
from samples.media import make_audio
from tests.pipelines.media.recordings import AUDIO_RATE, loudness_gap, make_opus, make_vod

DURATION = 96.0
SPANS = [Span(start=start, end=min(start + 16.0, DURATION)) for start in range(0, 96, 16)]
# Bursts (2 s long) that start on a boundary, a window before one, a window after one, and that
# end on one; a silence across a boundary and one inside a span.
BURSTS = [16.0, 31.5, 48.5, 62.0]
QUIET = [(5.0, 8.0), (78.5, 82.0)]


def audio_file(path: Path) -> Path:
    make_audio(
        path,
        duration_seconds=DURATION,
        bursts_at=BURSTS,
        quiet_spans=QUIET,
        sample_rate=AUDIO_RATE,
        channels=1,
    )
    return path


def ends(spans: list[Span]) -> list[float]:
    return [time for span in spans for time in (span.start, span.end)]


def ends_of(pairs: list[tuple[float, float]]) -> list[float]:
    return [time for pair in pairs for time in pair]


MAKERS: dict[str, Callable[[Path], Path]] = {
    "wav": lambda folder: audio_file(folder / "talk.wav"),
    "mp3": lambda folder: audio_file(folder / "talk.mp3"),
    "m4a": lambda folder: audio_file(folder / "talk.m4a"),
    "ogg-opus": lambda folder: make_opus(
        folder / "talk.ogg", duration_seconds=DURATION, bursts_at=BURSTS, quiet_spans=QUIET
    ),
    "mkv": lambda folder: make_vod(
        folder / "vod.mkv",
        duration_seconds=DURATION,
        cuts_at=[],
        bursts_at=BURSTS,
        quiet_spans=QUIET,
    ),
}


@pytest.fixture(scope="module", params=sorted(MAKERS))
def recording(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return MAKERS[request.param](tmp_path_factory.mktemp(request.param))


@pytest.fixture(scope="module")
def whole(recording: Path) -> AudioAnalysis:
    return analyse_audio(recording)


@pytest.fixture(scope="module")
def parts(recording: Path) -> list[LoudnessSpan | None]:
    return [measure_loudness(recording, span) for span in SPANS]


def test_spans_give_the_whole_recordings_loudness_silences_and_bursts(
    whole: AudioAnalysis, parts: list[LoudnessSpan | None]
) -> None:
    combined = combine_loudness(parts, whole.duration_seconds)

    assert loudness_gap(combined.momentary_lufs, whole.momentary_lufs) <= 0.1
    assert loudness_gap(combined.short_term_lufs, whole.short_term_lufs) <= 0.1
    assert whole.integrated_lufs is not None
    assert combined.integrated_lufs == pytest.approx(whole.integrated_lufs, abs=0.01)
    assert whole.loudness_range_lu is not None
    assert combined.loudness_range_lu == pytest.approx(whole.loudness_range_lu, abs=0.02)
    assert combined.sample_peak_dbfs == pytest.approx(whole.sample_peak_dbfs, abs=0.01)
    assert [peak.time for peak in combined.peaks] == [peak.time for peak in whole.peaks]
    assert combined.silences == whole.silences
    assert combined.gaps == []


def test_each_burst_on_a_boundary_is_found_once_at_its_onset(
    whole: AudioAnalysis, parts: list[LoudnessSpan | None]
) -> None:
    combined = combine_loudness(parts, whole.duration_seconds)

    assert [peak.time for peak in combined.peaks] == pytest.approx(BURSTS, abs=0.5)


def test_a_silence_across_a_boundary_is_one_silence(
    whole: AudioAnalysis, parts: list[LoudnessSpan | None]
) -> None:
    combined = combine_loudness(parts, whole.duration_seconds)

    assert ends(combined.silences) == pytest.approx(ends_of(QUIET), abs=0.5)


def test_a_span_holds_exactly_the_windows_that_start_within_it(
    parts: list[LoudnessSpan | None],
) -> None:
    for span, part in zip(SPANS, parts, strict=True):
        assert part is not None
        assert part.span == span
        assert part.first_window == round(span.start / 0.4)
        assert len(part.momentary_lufs) == round((span.end - span.start) / 0.4)
        assert len(part.short_term_lufs) == len(part.momentary_lufs)


def test_a_file_object_reads_as_the_file_does(recording: Path) -> None:
    span = SPANS[3]

    with recording.open("rb") as file:
        read = measure_loudness(file, span)

    assert read == measure_loudness(recording, span)


def test_a_failed_span_is_a_gap_with_no_silence_or_burst_of_its_own(
    whole: AudioAnalysis, parts: list[LoudnessSpan | None]
) -> None:
    failed = SPANS[3]  # 48 to 64 s: two bursts
    with_gap = [None if part and part.span == failed else part for part in parts]

    combined = combine_loudness(with_gap, whole.duration_seconds)

    assert combined.gaps == [failed]
    assert len(combined.momentary_lufs) == len(whole.momentary_lufs)
    assert set(combined.momentary_lufs[120:160]) == {FLOOR_LUFS}
    assert [p.time for p in combined.peaks] == [p.time for p in whole.peaks if p.time < 48]
    assert combined.silences == whole.silences


def test_silence_stops_at_a_gap_instead_of_running_into_it(
    whole: AudioAnalysis, parts: list[LoudnessSpan | None]
) -> None:
    failed = SPANS[5]  # 80 to 96 s, just after a silence begins at 78.5 s
    with_gap = [None if part and part.span == failed else part for part in parts]

    combined = combine_loudness(with_gap, whole.duration_seconds)

    assert combined.gaps == [failed]
    assert ends(combined.silences) == pytest.approx(ends_of([QUIET[0], (78.5, 80.0)]), abs=0.5)
    assert len(combined.momentary_lufs) == len(whole.momentary_lufs)


def test_when_every_span_fails_there_is_nothing_but_a_gap() -> None:
    combined = combine_loudness([None, None], 20.2)

    assert combined.gaps == [Span(start=0.0, end=20.2)]
    assert combined.momentary_lufs == [FLOOR_LUFS] * 51
    assert combined.integrated_lufs is None
    assert (combined.silences, combined.peaks) == ([], [])


@pytest.mark.parametrize("lateness", [3.0, 30.0])
def test_a_seek_that_lands_too_late_to_settle_is_tried_again_from_further_back(
    recording: Path,
    parts: list[LoudnessSpan | None],
    monkeypatch: pytest.MonkeyPatch,
    lateness: float,
) -> None:
    # Some formats seek by guessing from the bit rate; here every seek lands late, within the
    # span or past its end.
    def late(container: InputContainer, stream: Stream, seconds: float) -> bool:
        return seek_before(container, stream, seconds + lateness)

    monkeypatch.setattr(audio, "seek_before", late)

    assert measure_loudness(recording, SPANS[2]) == parts[2]


def test_progress_rises_to_one_over_the_span(recording: Path) -> None:
    seen: list[float] = []

    measure_loudness(recording, SPANS[2], progress=seen.append)

    assert seen[-1] == 1.0
    assert seen == sorted(seen)
