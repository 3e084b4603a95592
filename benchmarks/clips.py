"""Clips: what a highlight clip costs, copied and re-encoded, against decoding the same stretch.

For a minute of generated 720p25 video (H.264/AAC in MP4 with a keyframe every 2 s, and the same
pictures as MPEG-4 Part 2 in Matroska, which clips re-encode) it cuts a 20 s highlight and
measures, in the same run, CPU seconds (every thread of this process) of:
- the floor: a bare PyAV decode of every frame of the clip's stretch, from the keyframe before;
- the clip: `pipelines.media.clips.cut_clip`, copy for the MP4, re-encode for the Matroska.

    .venv/bin/python -m benchmarks.clips --json benchmarks/out/clips.json
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import av

from pipelines.media.clips import cut_clip
from pipelines.media.models import Span
from samples.encodings import Encoding, encode_recording

SOURCE_SECONDS = 60.0
HIGHLIGHT = Span(start=21.0, end=40.0)  # 20 s with the lead-in
SIZE = (1280, 720)


@dataclass
class ClipRun:
    name: str
    method: str
    clip_seconds: float
    decode_floor_cpu_seconds: float
    clip_cpu_seconds: float
    ratio_to_floor: float
    cpu_seconds_per_clip_second: float


def cpu_seconds(work: Callable[[], object]) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF)
    work()
    after = resource.getrusage(resource.RUSAGE_SELF)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def decode_stretch(path: Path, span: Span) -> None:
    """Every picture and sound frame from the keyframe before `span` to its end."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        assert video.time_base is not None
        container.seek(math.floor(span.start / video.time_base), stream=video)
        for frame in container.decode(*container.streams):
            if frame.time is not None and frame.time >= span.end:
                break


def measure(name: str, source: Path, directory: Path) -> ClipRun:
    stretch = Span(start=HIGHLIGHT.start - 1.0, end=HIGHLIGHT.end)
    floor = cpu_seconds(lambda: decode_stretch(source, stretch))
    made: list[str] = []

    def cut() -> None:
        clip = cut_clip(source, HIGHLIGHT, directory, name, progress=lambda _done: None)
        made.append(clip.method)

    spent = cpu_seconds(cut)
    seconds = stretch.end - stretch.start
    return ClipRun(
        name=name,
        method=made[0],
        clip_seconds=seconds,
        decode_floor_cpu_seconds=round(floor, 3),
        clip_cpu_seconds=round(spent, 3),
        ratio_to_floor=round(spent / floor, 3),
        cpu_seconds_per_clip_second=round(spent / seconds, 4),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="clips-bench-") as scratch:
        directory = Path(scratch)
        sources = {
            "h264-mp4": encode_recording(
                directory / "source.mp4",
                Encoding("mp4", "libx264", "aac", 48000),
                duration_seconds=SOURCE_SECONDS,
                size=SIZE,
            ),
            "mpeg4-mkv": encode_recording(
                directory / "source.mkv",
                Encoding("matroska", "mpeg4", "aac", 48000),
                duration_seconds=SOURCE_SECONDS,
                size=SIZE,
            ),
        }
        runs = [measure(name, path, directory) for name, path in sources.items()]
    for run in runs:
        print(json.dumps(asdict(run)))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(run) for run in runs], indent=2))


if __name__ == "__main__":
    main()
