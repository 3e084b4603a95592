"""Highlight clips cut from files and from Cloud Storage (the emulator): copied from a keyframe
where the codecs allow, re-encoded from the lead-in where not, playable and of the right length."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from jobs.cloud.storage import Storage
from jobs.contract.errors import PermanentError
from jobs.contract.settings import Settings
from pipelines.media.clips import LEAD_SECONDS, MAX_EXTRA_LEAD_SECONDS, Clip, cut_clip
from pipelines.media.models import Span
from samples.encodings import Encoding, encode_recording
from tests.pipelines.clip_recordings import decode, keyframe_times, picture_at

DURATION = 30.0
CUTS = [7.0, 19.0]
BURSTS = [11.0, 23.0]
HIGHLIGHT = Span(start=10.5, end=15.0)
FPS = 25


def cut(source: Path, tmp_path: Path, highlight: Span = HIGHLIGHT) -> Clip:
    return cut_clip(source, highlight, tmp_path, "clip", progress=lambda _fraction: None)


def recording(directory: Path, name: str, encoding: Encoding, **kwargs: object) -> Path:
    return encode_recording(
        directory / name,
        encoding,
        duration_seconds=DURATION,
        cuts_at=CUTS,
        bursts_at=BURSTS,
        **kwargs,  # type: ignore[arg-type]
    )


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("clip-sources")


def test_h264_with_aac_is_copied_into_mp4_from_the_keyframe_before_the_lead_in(
    media: Path, tmp_path: Path
) -> None:
    source = recording(media, "stream.mp4", Encoding("mp4", "libx264", "aac", 44100))
    want = HIGHLIGHT.start - LEAD_SECONDS

    clip = cut(source, tmp_path)

    assert (clip.method, clip.content_type, clip.path.suffix) == ("copy", "video/mp4", ".mp4")
    keyframes = keyframe_times(source)
    assert clip.start == pytest.approx(max(k for k in keyframes if k <= want + 1e-3))
    assert want - clip.start < 2.0  # a keyframe every 2 s (and at each cut)
    played = decode(clip.path)
    assert (played.video_codec, played.audio_codec) == ("h264", "aac")
    assert played.picture_times[0] == pytest.approx(0.0, abs=1e-3)
    length = HIGHLIGHT.end - clip.start
    assert played.picture_times[-1] + 1 / FPS == pytest.approx(length, abs=0.1)
    assert played.sound_end == pytest.approx(length, abs=0.1)
    # A copy: the clip's first picture is the source's keyframe, bit for bit.
    assert np.array_equal(picture_at(clip.path, 0.0), picture_at(source, clip.start))
    # The index comes first, so a browser plays the clip while it downloads.
    head = clip.path.read_bytes()
    assert head.index(b"moov") < head.index(b"mdat")


def test_a_keyframe_too_far_before_the_lead_in_means_the_picture_is_re_encoded(
    media: Path, tmp_path: Path
) -> None:
    source = encode_recording(
        media / "sparse.mp4",
        Encoding("mp4", "libx264", "aac", 44100),
        duration_seconds=DURATION,
        keyframe_seconds=30.0,
    )
    want = HIGHLIGHT.start - LEAD_SECONDS
    before = max(k for k in keyframe_times(source) if k <= want)
    assert before < want - MAX_EXTRA_LEAD_SECONDS

    clip = cut(source, tmp_path)

    assert clip.method == "encode"
    assert clip.start == pytest.approx(HIGHLIGHT.start - LEAD_SECONDS)
    played = decode(clip.path)
    assert played.video_codec == "h264"
    assert played.picture_times[0] == pytest.approx(0.0, abs=1 / FPS)
    assert played.picture_times[-1] + 1 / FPS == pytest.approx(5.5, abs=0.1)


def test_a_codec_mp4_players_lack_is_re_encoded_to_h264_and_aac_from_the_lead_in(
    media: Path, tmp_path: Path
) -> None:
    source = recording(media, "old.mkv", Encoding("matroska", "mpeg4", "ac3"))

    clip = cut(source, tmp_path)

    assert (clip.method, clip.content_type, clip.path.suffix) == ("encode", "video/mp4", ".mp4")
    assert clip.start == pytest.approx(HIGHLIGHT.start - LEAD_SECONDS)
    played = decode(clip.path)
    assert (played.video_codec, played.audio_codec) == ("h264", "aac")
    assert played.picture_times[0] == pytest.approx(0.0, abs=1 / FPS)
    assert played.picture_times[-1] + 1 / FPS == pytest.approx(5.5, abs=0.1)
    assert played.sound_end == pytest.approx(5.5, abs=0.1)
    # The picture is the source's, scene for scene: a cut planted at 19 s is not in it, and
    # the clip's picture at its 1.0 s mark is the source's at 10.5 s (to encoding loss).
    shown = picture_at(clip.path, LEAD_SECONDS).astype(float)
    original = picture_at(source, HIGHLIGHT.start).astype(float)
    assert np.abs(shown - original).mean() < 6


def test_h264_with_sound_mp4_does_not_take_keeps_its_picture_and_re_encodes_the_sound(
    media: Path, tmp_path: Path
) -> None:
    source = recording(media, "h264-ac3.mkv", Encoding("matroska", "libx264", "ac3"))

    clip = cut(source, tmp_path)

    assert (clip.method, clip.path.suffix) == ("copy", ".mp4")
    want = HIGHLIGHT.start - LEAD_SECONDS
    assert clip.start == pytest.approx(max(k for k in keyframe_times(source) if k <= want))
    played = decode(clip.path)
    assert (played.video_codec, played.audio_codec) == ("h264", "aac")
    assert played.sound_end == pytest.approx(HIGHLIGHT.end - clip.start, abs=0.1)


def test_vp9_with_opus_is_copied_into_webm(media: Path, tmp_path: Path) -> None:
    source = recording(media, "web.webm", Encoding("webm", "libvpx-vp9", "libopus"))

    clip = cut(source, tmp_path)

    assert (clip.method, clip.content_type, clip.path.suffix) == ("copy", "video/webm", ".webm")
    played = decode(clip.path)
    assert (played.video_codec, played.audio_codec) == ("vp9", "opus")
    assert clip.start <= HIGHLIGHT.start - LEAD_SECONDS
    length = HIGHLIGHT.end - clip.start
    assert played.picture_times[-1] + 1 / FPS == pytest.approx(length, abs=0.1)


@pytest.mark.parametrize(
    ("name", "encoding", "suffix", "method", "codec"),
    [
        ("talk.mp3", Encoding("mp3", None, "libmp3lame", 44100), ".mp3", "copy", "mp3"),
        ("talk.m4a", Encoding("mp4", None, "aac", 44100), ".m4a", "copy", "aac"),
        ("talk.ogg", Encoding("ogg", None, "libopus"), ".ogg", "copy", "opus"),
        ("talk.wav", Encoding("wav", None, "pcm_s16le", 44100), ".m4a", "encode", "aac"),
        ("talk.flac", Encoding("flac", None, "flac", 44100), ".m4a", "encode", "aac"),
    ],
)
def test_sound_alone_gives_a_sound_clip_from_the_lead_in(
    media: Path,
    tmp_path: Path,
    name: str,
    encoding: Encoding,
    suffix: str,
    method: str,
    codec: str,
) -> None:
    source = recording(media, name, encoding)
    want = HIGHLIGHT.start - LEAD_SECONDS

    clip = cut(source, tmp_path)

    assert (clip.path.suffix, clip.method) == (suffix, method)
    assert clip.content_type.startswith("audio/")
    # A copy starts with the packet sounding at the lead-in: a few hundredths early at most.
    assert want - 0.05 <= clip.start <= want + 1e-3
    played = decode(clip.path)
    assert (played.video_codec, played.audio_codec) == (None, codec)
    assert played.sound_end == pytest.approx(HIGHLIGHT.end - clip.start, abs=0.08)


def test_a_highlight_at_the_very_start_has_no_lead_in_to_give(media: Path, tmp_path: Path) -> None:
    source = recording(media, "start.mp4", Encoding("mp4", "libx264", "aac", 44100))

    clip = cut(source, tmp_path, Span(start=0.4, end=3.0))

    assert (clip.method, clip.start) == ("copy", 0.0)
    assert decode(clip.path).picture_times[-1] + 1 / FPS == pytest.approx(3.0, abs=0.1)


def test_a_stretch_with_no_decodable_picture_is_unsupported_media(
    media: Path, tmp_path: Path
) -> None:
    source = recording(
        media, "spoiled.mkv", Encoding("matroska", "mpeg4", "aac"), zeroed=(8.0, 17.0)
    )

    with pytest.raises(PermanentError) as refused:
        cut(source, tmp_path)

    assert refused.value.code == "UNSUPPORTED_MEDIA"


@pytest.fixture(scope="module")
def storage(emulator_hosts: dict[str, str]) -> Iterator[Storage]:
    """A bucket of its own on the Storage emulator, emptied and removed afterwards."""
    storage = Storage(Settings(bucket=f"clips-{uuid.uuid4().hex[:10]}"))
    storage.ensure_bucket()
    yield storage
    for blob in storage.bucket.list_blobs():
        blob.delete()
    storage.bucket.delete()


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("copied.mp4", Encoding("mp4", "libx264", "aac", 44100)),
        ("encoded.mkv", Encoding("matroska", "mpeg4", "aac")),
    ],
)
def test_a_clip_read_from_cloud_storage_reads_about_its_share_of_the_file(
    storage: Storage, tmp_path: Path, name: str, encoding: Encoding
) -> None:
    source = encode_recording(
        tmp_path / name, encoding, duration_seconds=120.0, cuts_at=[30.0, 70.0]
    )
    uri = storage.upload_file(source, f"jobs/clips/{name}", "video/mp4").uri
    reader = storage.open_ranged(uri, chunk_bytes=16 * 1024)
    highlight = Span(start=60.0, end=66.0)

    with reader:
        clip = cut_clip(reader, highlight, tmp_path, "clip", progress=lambda _fraction: None)
    (tmp_path / "local").mkdir()
    from_file = cut(source, tmp_path / "local", highlight)

    assert clip.start == from_file.start
    assert decode(clip.path) == decode(from_file.path)
    # Seven seconds of two minutes, with the keyframe before them and the file's index.
    assert 0 < reader.bytes_read < 0.15 * source.stat().st_size
