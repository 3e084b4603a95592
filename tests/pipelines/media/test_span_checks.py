"""The checks on lying media hold span by span: a span of a file whose timestamps jump to years
fails as the whole file does, and so does one past the length a job may analyse."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.contract.errors import PermanentError
from pipelines.media.audio import measure_loudness
from pipelines.media.models import Span
from pipelines.media.scenes import sample_scenes
from tests.pipelines.media.recordings import make_vod
from tests.security.test_hostile_media import lying_audio, lying_video

FIRST, LATER = Span(start=0.0, end=300.0), Span(start=600.0, end=900.0)


@pytest.mark.parametrize("span", [FIRST, LATER], ids=["first", "later"])
def test_a_span_of_audio_that_jumps_to_years_is_media_too_long(tmp_path: Path, span: Span) -> None:
    media = lying_audio(tmp_path / "lie.mkv", jump_to=1e9)

    with pytest.raises(PermanentError) as refused, media.open("rb") as file:
        measure_loudness(file, span)

    assert refused.value.code == "MEDIA_TOO_LONG"


@pytest.mark.parametrize("span", [FIRST, LATER], ids=["first", "later"])
def test_a_span_of_video_that_jumps_to_years_is_media_too_long(tmp_path: Path, span: Span) -> None:
    media = lying_video(tmp_path / "lie.mkv", jump_to=1e9)

    with pytest.raises(PermanentError) as refused:
        sample_scenes(media, span)

    assert refused.value.code == "MEDIA_TOO_LONG"


def test_a_jump_of_hours_inside_a_span_is_refused(tmp_path: Path) -> None:
    media = lying_audio(tmp_path / "gap.mkv", jump_to=2 * 3600.0, honest_packets=50)

    with pytest.raises(PermanentError) as refused:
        measure_loudness(media, Span(start=0.0, end=600.0))

    assert refused.value.code == "UNSUPPORTED_MEDIA"
    assert "jump" in str(refused.value)


def test_a_span_past_the_length_allowed_is_media_too_long(tmp_path: Path) -> None:
    media = make_vod(tmp_path / "vod.mp4", duration_seconds=12.0, cuts_at=[])

    for analyse in (measure_loudness, sample_scenes):
        with pytest.raises(PermanentError) as refused:
            analyse(media, Span(start=4.0, end=12.0), max_seconds=8.0)

        assert refused.value.code == "MEDIA_TOO_LONG"
