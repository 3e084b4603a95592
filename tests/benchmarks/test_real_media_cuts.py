"""The scene-cut evaluation's scoring: what its precision and recall figures stand on."""

from __future__ import annotations

from benchmarks.real_media.cuts import Score, match


def test_each_label_takes_one_detection_within_the_tolerance() -> None:
    # Two detections near one label: one matches, the other is a false cut; 9.0 is missed.
    found = [1.02, 1.3, 5.0]
    assert match(found, [1.0, 9.0], ignore=[], tolerance=0.5) == (1, 2, 1)


def test_a_detection_near_an_ignored_change_counts_neither_way() -> None:
    assert match([3.1, 7.0], [7.0], ignore=[3.0], tolerance=0.5) == (1, 0, 0)


def test_f1_of_the_counts() -> None:
    score = Score(found=10, false=1, missed=3)

    assert (round(score.precision, 2), round(score.recall, 2), round(score.f1, 2)) == (
        0.91,
        0.77,
        0.83,
    )
