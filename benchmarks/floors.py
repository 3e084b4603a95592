"""CPU floors, each measured in a fresh interpreter so nothing else shares its clock: a bare PyAV
decode of every frame of a file, and the media analyses of one span of it without longrun
around them (no messages, leases, writes or Storage).

CPU time is the process's user + system time over the work alone (imports excluded), every
thread included: on a shared, loaded machine it moves far less than wall time does.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_DECODE = """
import json, sys, time, av
threads = sys.argv[2]
wall, cpu = time.perf_counter(), time.process_time()
frames = 0
with av.open(sys.argv[1]) as container:
    for stream in container.streams.video:
        stream.thread_type = threads
    for frame in container.decode(*container.streams.audio, *container.streams.video):
        frames += 1
print(json.dumps({"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                  "frames": frames}))
"""

_ANALYSE = """
import json, resource, sys, time
from pathlib import Path
from pipelines.media.audio import measure_loudness
from pipelines.media.models import Span
from pipelines.media.scenes import sample_scenes
path, span = Path(sys.argv[1]), Span(start=float(sys.argv[2]), end=float(sys.argv[3]))
found = {}
for name in sys.argv[4].split(","):
    analyse = {"scenes": sample_scenes, "audio": measure_loudness}[name]
    wall, cpu = time.perf_counter(), time.process_time()
    analyse(path, span)
    found[name] = {"wall": time.perf_counter() - wall, "cpu": time.process_time() - cpu,
                   "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
print(json.dumps(found))
"""


@dataclass
class Decode:
    """A bare decode of every audio and video frame of a file."""

    threads: str  # PyAV's thread_type for video: AUTO (frame threads, as the pipeline) or NONE
    wall_seconds: float
    cpu_seconds: float
    frames: int


def decode(path: Path, threads: str = "AUTO") -> Decode:
    """Decode every frame of `path` in a fresh interpreter; its wall and CPU seconds."""
    found = _child(_DECODE, str(path), threads)
    return Decode(threads, round(found["wall"], 2), round(found["cpu"], 2), found["frames"])


def analyses(
    path: Path, start: float, end: float, video: bool = True
) -> dict[str, dict[str, float]]:
    """Wall and CPU seconds of the loudness (and, with `video`, the scene sampling, first) of
    one span of `path`, each as one item runs it but straight from the local file, and the
    process's peak RSS after each."""
    names = "scenes,audio" if video else "audio"
    found = _child(_ANALYSE, str(path), str(start), str(end), names)
    return {name: {k: round(v, 3) for k, v in times.items()} for name, times in found.items()}


def _child(script: str, *args: str) -> Any:
    """What `script` printed as JSON, run in a fresh interpreter (in this directory, so it
    imports this checkout's code)."""
    out = subprocess.run(
        [sys.executable, "-c", script, *args], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)
