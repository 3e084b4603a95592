"""Thumbnails are JPEGs of the asked width; the timeline is a PNG; the report is plain JSON."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from jobs.contract.errors import PermanentError
from pipelines.media.audio import analyse_audio
from pipelines.media.chat import analyse_chat
from pipelines.media.highlights import score_highlights
from pipelines.media.models import (
    AudioAnalysis,
    ChatAnalysis,
    Highlight,
    SceneAnalysis,
    Span,
)
from pipelines.media.probe import probe_media
from pipelines.media.report import build_report, clock, timeline_png
from pipelines.media.scenes import find_scene_cuts
from pipelines.media.spec import MediaOptions
from pipelines.media.thumbnails import video_thumbnail, waveform_thumbnail
from samples.media import make_audio, make_chat, make_video

CUT = 3.0


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    make_video(path, duration_seconds=6.0, cuts_at=[CUT], size=(320, 180), bursts_at=[4.0])
    return path


def opened(data: bytes) -> tuple[str | None, tuple[int, int], float]:
    """The picture's format, size and mean brightness."""
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.format, image.size, float(np.asarray(image.convert("L")).mean())


def test_a_video_thumbnail_is_a_jpeg_of_the_asked_width(clip: Path) -> None:
    data = video_thumbnail(clip, 1.0, 200)

    picture_format, size, _ = opened(data)

    assert picture_format == "JPEG"
    assert size == (200, 112)


def test_a_video_thumbnail_shows_the_frame_at_its_time(clip: Path) -> None:
    before = opened(video_thumbnail(clip, CUT - 0.5, 96))[2]
    at_cut = opened(video_thumbnail(clip, CUT, 96))[2]
    after = opened(video_thumbnail(clip, CUT + 2.0, 96))[2]

    assert abs(at_cut - after) < 10 < abs(at_cut - before)


def test_a_thumbnail_past_the_end_shows_the_last_frame(clip: Path) -> None:
    picture_format, size, _ = opened(video_thumbnail(clip, 60.0, 160))

    assert (picture_format, size) == ("JPEG", (160, 90))


def test_a_thumbnail_of_a_recording_without_pictures_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "talk.wav"
    make_audio(path, duration_seconds=1.0, bursts_at=[])

    with pytest.raises(PermanentError) as raised:
        video_thumbnail(path, 0.5, 160)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


@pytest.mark.parametrize(
    ("width", "span"), [(320, Span(start=2.0, end=9.0)), (97, Span(start=0.0, end=600.0))]
)
def test_a_waveform_thumbnail_is_a_sixteen_by_nine_jpeg(width: int, span: Span) -> None:
    audio = AudioAnalysis(
        window_seconds=0.5,
        duration_seconds=10.0,
        momentary_lufs=[-30.0] * 8 + [-6.0] * 4 + [-100.0] * 8,
        short_term_lufs=[-30.0] * 8 + [-12.0] * 4 + [-40.0] * 8,
    )

    picture_format, size, _ = opened(waveform_thumbnail(audio, span, width))

    assert (picture_format, size) == ("JPEG", (width, round(width * 9 / 16)))


@pytest.fixture(scope="module")
def analysed(
    clip: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[AudioAnalysis, SceneAnalysis, ChatAnalysis, list[Highlight]]:
    chat_path = tmp_path_factory.mktemp("chat") / "chat.csv"
    make_chat(chat_path, duration_seconds=6.0, bursts_at=[1.0], format="csv")
    audio, scenes = analyse_audio(clip), find_scene_cuts(clip)
    chat = analyse_chat(chat_path, duration_seconds=6.0)
    highlights = score_highlights(
        duration_seconds=6.0,
        audio=audio,
        scenes=scenes,
        chat=chat,
        options=MediaOptions(min_highlight_seconds=2.0),
    )
    return audio, scenes, chat, highlights


def test_the_timeline_is_a_png_of_the_asked_width(
    analysed: tuple[AudioAnalysis, SceneAnalysis, ChatAnalysis, list[Highlight]],
) -> None:
    audio, scenes, chat, highlights = analysed

    data = timeline_png(
        duration_seconds=6.0,
        audio=audio,
        scenes=scenes,
        chat=chat,
        highlights=highlights,
        width=900,
    )

    picture_format, (width, height), _ = opened(data)
    assert (picture_format, width) == ("PNG", 900)
    assert height > 200


def test_the_timeline_of_a_recording_with_nothing_found_is_still_a_picture() -> None:
    data = timeline_png(
        duration_seconds=7200.0, audio=None, scenes=None, chat=None, highlights=[], width=640
    )

    picture_format, (width, _), _ = opened(data)
    assert (picture_format, width) == ("PNG", 640)


def test_the_report_is_plain_json_with_everything_found(
    clip: Path, analysed: tuple[AudioAnalysis, SceneAnalysis, ChatAnalysis, list[Highlight]]
) -> None:
    audio, scenes, chat, highlights = analysed

    report = build_report(
        media=probe_media(clip), audio=audio, scenes=scenes, chat=chat, highlights=highlights
    )

    document = json.loads(json.dumps(report))
    assert document["summary"]["scene_cuts"] == len(scenes.cuts) == 1
    assert document["media"]["video"]["width"] == 320
    assert AudioAnalysis.model_validate(document["audio"]) == audio
    assert [Highlight.model_validate(h) for h in document["highlights"]] == highlights


@pytest.mark.parametrize(("seconds", "text"), [(0.0, "0:00"), (65.0, "1:05"), (3725.4, "1:02:05")])
def test_clock_labels_read_as_times(seconds: float, text: str) -> None:
    assert clock(seconds) == text
