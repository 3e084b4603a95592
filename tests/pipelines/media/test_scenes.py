"""Scene cuts: each planted cut found on its first new frame, and nothing else; the failures of
a sampled detector on real footage (a cut in the first or last sampled interval, a shaky
camera, a transition longer than a sample, shots shorter than a scene can be) do not happen."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobs.contract.errors import PermanentError
from pipelines.media.cuts import MIN_SCENE_SECONDS, Comparisons, find_cuts
from pipelines.media.scenes import find_scene_cuts
from samples.media import make_audio, make_video
from tests.pipelines.media.recordings import make_footage

CUTS = [4.3, 11.0, 17.72, 24.5]
# At 25 frames a second, the first new frame of each.
FIRST_NEW_FRAMES = [4.32, 11.0, 17.72, 24.52]


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scenes") / "planted.mp4"
    make_video(path, duration_seconds=30.0, cuts_at=CUTS, size=(160, 90), with_audio=False)
    return path


def test_each_planted_cut_is_found_on_its_first_new_frame_and_nothing_else(
    planted: Path,
) -> None:
    analysis = find_scene_cuts(planted)

    assert analysis.cuts == pytest.approx(FIRST_NEW_FRAMES, abs=1e-3)
    assert analysis.frames_examined == pytest.approx(30 * 4, abs=2)


def test_a_slower_analysis_rate_still_finds_each_cut_on_its_frame(planted: Path) -> None:
    analysis = find_scene_cuts(planted, sample_fps=1.5, width=48)

    assert analysis.cuts == pytest.approx(FIRST_NEW_FRAMES, abs=1e-3)


def test_a_single_scene_has_no_cuts(tmp_path: Path) -> None:
    path = tmp_path / "one-scene.mp4"
    make_video(path, duration_seconds=8.0, cuts_at=[], size=(160, 90), with_audio=False)

    analysis = find_scene_cuts(path)

    assert analysis.cuts == []


def test_cuts_in_the_first_and_the_last_sampled_interval_are_found(tmp_path: Path) -> None:
    # 25 frames a second, 4 samples a second: 0.08 s is before the second sample, 5.88 s after
    # the last one (5.75 s), in a recording that ends at 5.96 s.
    path = make_footage(
        tmp_path / "edges.mp4", duration_seconds=6.0, shots_at=[(0.08, 0.08), (5.88, 5.88)]
    )

    analysis = find_scene_cuts(path)

    assert analysis.cuts == pytest.approx([0.08, 5.88], abs=1e-3)


def test_a_shaking_camera_hides_no_cut_and_makes_none(tmp_path: Path) -> None:
    cuts = [2.0, 4.52, 7.2]
    path = make_footage(
        tmp_path / "handheld.mp4",
        duration_seconds=10.0,
        shots_at=[(cut, cut) for cut in cuts],
        shake_pixels=8.0,
    )

    analysis = find_scene_cuts(path)

    assert analysis.cuts == pytest.approx(cuts, abs=1e-3)


def test_a_dissolve_longer_than_a_sample_is_not_a_pair_of_cuts(tmp_path: Path) -> None:
    # Dissolves over 0.6 s and 1.2 s (two and five sample intervals), and a hard cut after.
    path = make_footage(
        tmp_path / "dissolves.mp4",
        duration_seconds=12.0,
        shots_at=[(2.0, 2.6), (5.0, 6.2), (9.0, 9.0)],
    )

    analysis = find_scene_cuts(path)

    assert analysis.cuts == pytest.approx([9.0], abs=1e-3)


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


def comparisons(changes: list[float], peaks: list[float], rests: list[float]) -> Comparisons:
    times = [(i + 1) / 4 for i in range(len(changes))]
    return Comparisons(
        times=times,
        differences=changes,
        peaks=peaks,
        peak_times=[t - 0.08 for t in times],
        rests=rests,
    )


def test_a_burst_of_fast_motion_is_not_a_string_of_cuts() -> None:
    rng = np.random.default_rng(3)
    changes = rng.uniform(4.0, 6.0, 200)
    changes[80:110] = rng.uniform(30.0, 40.0, 30)  # a car chase: big changes throughout ...
    peaks = rng.uniform(1.0, 2.0, 200)
    peaks[80:110] = rng.uniform(8.0, 16.0, 30)  # ... from every frame to the next
    rests = peaks * 0.8
    changes[150], peaks[150], rests[150] = 90.0, 40.0, 1.5  # a real cut

    cuts = find_cuts(comparisons(changes.tolist(), peaks.tolist(), rests.tolist()))

    assert cuts == [pytest.approx(151 / 4 - 0.08)]


def test_a_still_picture_makes_no_cut_of_a_flicker() -> None:
    changes = [0.0] * 50 + [3.0] + [0.0] * 49

    assert find_cuts(comparisons(changes, [c / 2 for c in changes], [0.0] * 100)) == []


def test_a_change_spread_over_the_frames_between_samples_is_no_cut() -> None:
    # A large change between two samples, made a little at every frame: a fast pan or a wipe.
    changes = [4.0] * 20 + [60.0] + [4.0] * 20
    peaks = [1.0] * 20 + [9.0] + [1.0] * 20
    rests = [0.8] * 20 + [8.0] + [0.8] * 20

    assert find_cuts(comparisons(changes, peaks, rests)) == []


def test_cuts_closer_than_a_scene_can_last_are_one_cut() -> None:
    changes = [4.0] * 20 + [50.0, 70.0] + [4.0] * 20  # 0.25 s apart: the larger stays
    peaks = [1.0] * 20 + [30.0, 40.0] + [1.0] * 20

    cuts = find_cuts(comparisons(changes, peaks, [1.0] * 42))

    assert MIN_SCENE_SECONDS > 0.25
    assert cuts == [pytest.approx(22 / 4 - 0.08)]
