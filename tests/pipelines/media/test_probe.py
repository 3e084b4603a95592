"""Probing tells what a file holds, and refuses anything that is not a whole recording."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
from av.stream import Disposition
from PIL import Image

from jobs.contract.errors import PermanentError
from pipelines.media.probe import probe_media
from samples.media import make_audio, make_video

AUDIO_CODECS = {".wav": "pcm_s16le", ".m4a": "aac", ".mp3": "mp3"}


def cut_short(source: Path, target: Path, share: float) -> Path:
    data = source.read_bytes()
    target.write_bytes(data[: int(len(data) * share)])
    return target


@pytest.mark.parametrize("suffix", sorted(AUDIO_CODECS))
def test_probe_of_generated_audio_gives_its_length_and_stream(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"talk{suffix}"
    make_audio(path, duration_seconds=6.0, bursts_at=[2.0])

    info = probe_media(path)

    assert info.duration_seconds == pytest.approx(6.0, abs=0.1)
    assert (info.has_audio, info.has_video) == (True, False)
    assert info.audio is not None
    assert (info.audio.codec, info.audio.sample_rate) == (AUDIO_CODECS[suffix], 44100)
    assert info.audio.channels == 2
    assert [stream.kind for stream in info.streams] == ["audio"]


def test_probe_of_generated_video_gives_its_picture_and_sound(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    make_video(path, duration_seconds=4.0, cuts_at=[2.0], size=(160, 90))

    info = probe_media(path)

    assert info.duration_seconds == pytest.approx(4.0, abs=0.1)
    assert (info.has_audio, info.has_video) == (True, True)
    assert info.video is not None
    assert (info.video.width, info.video.height, info.video.fps) == (160, 90, 25.0)
    assert info.video.codec in {"h264", "mpeg4"}
    assert sorted(stream.kind for stream in info.streams) == ["audio", "video"]
    assert info.model_dump(mode="json")["video"]["width"] == 160


def with_cover_art(source: Path, target: Path) -> Path:
    """A copy of an MP3 with a picture attached, as music files often carry."""
    with av.open(str(source)) as song, av.open(str(target), "w") as copy:
        sound = copy.add_stream_from_template(song.streams.audio[0])
        cover = copy.add_stream("mjpeg")
        cover.width, cover.height, cover.pix_fmt = 64, 64, "yuvj420p"
        cover.disposition = Disposition.attached_pic
        picture = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 200, np.uint8), format="rgb24")
        copy.mux(cover.encode(picture.reformat(format="yuvj420p")))
        copy.mux(cover.encode(None))
        for packet in song.demux(song.streams.audio[0]):
            if packet.dts is not None:
                packet.stream = sound
                copy.mux(packet)
    return target


def test_cover_art_in_a_music_file_is_not_a_video(tmp_path: Path) -> None:
    song = tmp_path / "song.mp3"
    make_audio(song, duration_seconds=3.0, bursts_at=[])
    path = with_cover_art(song, tmp_path / "song-with-cover.mp3")

    info = probe_media(path)

    assert (info.has_audio, info.has_video) == (True, False)
    assert sorted(stream.kind for stream in info.streams) == ["audio", "video"]


def test_a_silent_video_has_no_audio(tmp_path: Path) -> None:
    path = tmp_path / "silent.mp4"
    make_video(path, duration_seconds=2.0, cuts_at=[], size=(160, 90), with_audio=False)

    info = probe_media(path)

    assert (info.has_audio, info.has_video, info.audio) == (False, True, None)


@pytest.mark.parametrize(
    ("name", "content"),
    [
        ("notes.txt", "Minutes of the meeting, which FFmpeg would show as text art.\n" * 500),
        ("chat.jsonl", '{"timestamp_seconds": 1.5, "user": "a", "text": "hi"}\n' * 50),
        ("renamed.mp4", "this is not a video at all\n"),
    ],
)
def test_a_text_file_is_unsupported_media(tmp_path: Path, name: str, content: str) -> None:
    path = tmp_path / name
    path.write_text(content)

    with pytest.raises(PermanentError) as raised:
        probe_media(path)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


def test_a_still_image_is_unsupported_media(tmp_path: Path) -> None:
    path = tmp_path / "poster.png"
    Image.new("RGB", (64, 36), (200, 30, 30)).save(path)

    with pytest.raises(PermanentError) as raised:
        probe_media(path)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


def test_an_empty_file_is_unsupported_media(tmp_path: Path) -> None:
    path = tmp_path / "empty.mp4"
    path.touch()

    with pytest.raises(PermanentError) as raised:
        probe_media(path)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


def test_a_missing_file_is_unsupported_media(tmp_path: Path) -> None:
    with pytest.raises(PermanentError) as raised:
        probe_media(tmp_path / "nowhere.mp4")

    assert raised.value.code == "UNSUPPORTED_MEDIA"


@pytest.mark.parametrize("suffix", [".wav", ".m4a", ".mp3"])
@pytest.mark.parametrize("share", [0.3, 0.9])
def test_a_truncated_audio_file_is_unsupported_media(
    tmp_path: Path, suffix: str, share: float
) -> None:
    whole = tmp_path / f"whole{suffix}"
    make_audio(whole, duration_seconds=20.0, bursts_at=[])
    truncated = cut_short(whole, tmp_path / f"truncated{suffix}", share)

    with pytest.raises(PermanentError) as raised:
        probe_media(truncated)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


@pytest.mark.parametrize("share", [0.3, 0.9])
def test_a_truncated_video_is_unsupported_media(tmp_path: Path, share: float) -> None:
    whole = tmp_path / "whole.mp4"
    make_video(whole, duration_seconds=20.0, cuts_at=[5.0], size=(160, 90))
    truncated = cut_short(whole, tmp_path / "truncated.mp4", share)

    with pytest.raises(PermanentError) as raised:
        probe_media(truncated)

    assert raised.value.code == "UNSUPPORTED_MEDIA"
