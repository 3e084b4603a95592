"""Every analysis reads a seekable file object as it reads a file, in each container it meets:
FFmpeg seeks through it for the index at the end of an MP4, a Matroska index, an Ogg bisection
or a WAV's sample positions."""

from __future__ import annotations

from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest

from jobs.contract.errors import PermanentError
from pipelines.media.audio import analyse_audio, measure_loudness
from pipelines.media.models import Span
from pipelines.media.probe import probe_media
from pipelines.media.scenes import find_scene_cuts, sample_scenes
from pipelines.media.thumbnails import video_thumbnail
from samples.media import make_audio
from tests.pipelines.media.recordings import index_last, make_opus, make_vod

DURATION = 20.0


def talk(path: Path) -> Path:
    make_audio(path, duration_seconds=DURATION, bursts_at=[12.0], sample_rate=8000, channels=1)
    return path


def vod(path: Path) -> Path:
    return make_vod(path, duration_seconds=DURATION, cuts_at=[7.0, 13.5], bursts_at=[12.0])


MAKERS: dict[str, Callable[[Path], Path]] = {
    "wav": lambda folder: talk(folder / "talk.wav"),
    "mp3": lambda folder: talk(folder / "talk.mp3"),
    "m4a": lambda folder: talk(folder / "talk.m4a"),
    "ogg-opus": lambda folder: make_opus(folder / "talk.ogg", duration_seconds=20, bursts_at=[12]),
    "mp4": lambda folder: vod(folder / "vod.mp4"),
    "mp4-index-last": lambda folder: index_last(vod(folder / "vod.mp4"), folder / "last.mp4"),
    "mkv": lambda folder: vod(folder / "vod.mkv"),
}


@pytest.fixture(scope="module", params=sorted(MAKERS))
def recording(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return MAKERS[request.param](tmp_path_factory.mktemp(request.param))


def test_probe_reads_a_file_object_as_the_file(recording: Path) -> None:
    with recording.open("rb") as file:
        info = probe_media(file)

    assert info == probe_media(recording)
    assert info.duration_seconds == pytest.approx(DURATION, abs=0.2)


def test_the_whole_recordings_analyses_read_a_file_object_as_the_file(recording: Path) -> None:
    with recording.open("rb") as file:
        audio = analyse_audio(file)
        scenes = find_scene_cuts(file) if probe_media(recording).has_video else None

    assert audio == analyse_audio(recording)
    assert [round(peak.time) for peak in audio.peaks] == [12]
    if scenes is not None:
        assert scenes == find_scene_cuts(recording)
        assert scenes.cuts == [7.0, 13.5]


def test_a_thumbnail_is_cut_from_a_file_object_as_from_the_file(tmp_path: Path) -> None:
    path = vod(tmp_path / "vod.mp4")

    with path.open("rb") as file:
        picture = video_thumbnail(file, 13.6, 64)

    assert picture == video_thumbnail(path, 13.6, 64)


@pytest.mark.parametrize("suffix", [".wav", ".mp4"])
def test_a_truncated_file_object_is_unsupported_media(tmp_path: Path, suffix: str) -> None:
    whole = talk(tmp_path / f"talk{suffix}") if suffix == ".wav" else vod(tmp_path / "vod.mp4")
    data = whole.read_bytes()

    with pytest.raises(PermanentError) as refused:
        probe_media(BytesIO(data[: len(data) * 6 // 10]))

    assert refused.value.code == "UNSUPPORTED_MEDIA"


def test_an_empty_file_object_is_unsupported_media() -> None:
    with pytest.raises(PermanentError) as refused:
        probe_media(BytesIO())

    assert refused.value.code == "UNSUPPORTED_MEDIA"


class Flaky(BytesIO):
    """A file whose reads past its middle fail, as a network read does in an outage."""

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= len(self.getbuffer()) // 2:
            raise ConnectionResetError("the network went away")
        return super().read(size)


def test_a_read_that_fails_midway_is_that_error_not_unsupported_media(tmp_path: Path) -> None:
    # An outage must stay retryable: it is not the file's fault.
    data = vod(tmp_path / "vod.mp4").read_bytes()
    span = Span(start=4.0, end=16.0)

    with pytest.raises(ConnectionResetError):
        measure_loudness(Flaky(data), span)
    with pytest.raises(ConnectionResetError):
        sample_scenes(Flaky(data), span)
