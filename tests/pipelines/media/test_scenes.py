"""Scene cuts: each planted cut found within one sampled frame, and nothing else."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobs.contract.errors import PermanentError
from pipelines.media.models import SceneAnalysis
from pipelines.media.scenes import detect_cuts, find_scene_cuts
from samples.media import make_audio, make_video

CUTS = [4.3, 11.0, 17.72, 24.5]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenes") / "planted.mp4"
    make_video(path, duration_seconds=30.0, cuts_at=CUTS, size=(160, 90), with_audio=False)
    return path


def assert_found(analysis: SceneAnalysis, planted: list[float]) -> None:
    interval = 1.0 / analysis.sample_fps
    assert len(analysis.cuts) == len(planted), analysis.cuts
    for cut, found in zip(planted, analysis.cuts, strict=True):
        assert abs(found - cut) <= interval, (cut, found)


def test_each_planted_cut_is_found_and_nothing_else(planted: Path) -> None:
    analysis = find_scene_cuts(planted)

    assert_found(analysis, CUTS)
    assert analysis.frames_examined == pytest.approx(30 * 4, abs=2)


def test_a_slower_analysis_rate_still_finds_each_cut(planted: Path) -> None:
    analysis = find_scene_cuts(planted, sample_fps=1.5, width=48)

    assert_found(analysis, CUTS)


def test_a_single_scene_has_no_cuts(tmp_path: Path) -> None:
    path = tmp_path / "one-scene.mp4"
    make_video(path, duration_seconds=8.0, cuts_at=[], size=(160, 90), with_audio=False)

    analysis = find_scene_cuts(path)

    assert analysis.cuts == []


def test_progress_rises_to_one(planted: Path) -> None:
    seen: list[float] = []

    find_scene_cuts(planted, progress=seen.append)

    assert seen[-1] == 1.0
    assert seen == sorted(seen)


def test_a_recording_without_pictures_is_unsupported(tmp_path: Path) -> None:
    path = tmp_path / "talk.wav"
    make_audio(path, duration_seconds=2.0, bursts_at=[])

    with pytest.raises(PermanentError) as raised:
        find_scene_cuts(path)

    assert raised.value.code == "UNSUPPORTED_MEDIA"


def test_a_burst_of_fast_motion_is_not_a_string_of_cuts() -> None:
    rng = np.random.default_rng(3)
    differences = rng.uniform(4.0, 6.0, 200)
    differences[80:110] = rng.uniform(30.0, 40.0, 30)  # a car chase: big changes throughout
    differences[150] = 90.0  # a real cut
    times = [i / 4 for i in range(201)]

    cuts = detect_cuts(times, differences.tolist())

    assert cuts == [times[151]]


def test_a_still_picture_makes_no_cut_of_a_flicker() -> None:
    differences = [0.0] * 50 + [3.0] + [0.0] * 49
    times = [i / 4 for i in range(101)]

    assert detect_cuts(times, differences) == []
