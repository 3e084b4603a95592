"""Media: the whole media-analysis pipeline against the floor its decoding allows.

For each generated recording (60 minutes of audio, 10 minutes of 720p video, and 10 minutes of
audio to show memory does not grow with duration) it measures, in the same run:
- the floor: a bare PyAV decode of every audio and video frame of the file, in a fresh process;
- the pipeline: a media-analysis job through a real stack (upload, Pub/Sub, every stage, Storage),
  from its first stage starting to its end, on a fresh processor whose peak memory is read from
  /proc afterwards.

    .venv/bin/python -m benchmarks.media --json benchmarks/out/media.json
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

from google.cloud import firestore

from benchmarks.environment import standalone
from cli.uploading import upload_file
from deploy.local.ephemeral import Stack, start_stack
from jobs.contract.models import JobStatus
from samples.media import make_audio, make_video

_DECODE = """
import sys, time, av
start = time.perf_counter()
with av.open(sys.argv[1]) as container:
    container.streams.video and setattr(container.streams.video[0], "thread_type", "AUTO")
    for frame in container.decode(*container.streams.audio, *container.streams.video):
        pass
print(time.perf_counter() - start)
"""


@dataclass
class MediaRun:
    name: str
    media_seconds: float
    decode_floor_seconds: float
    pipeline_seconds: float
    ratio_to_floor: float
    pipeline_speed_x_realtime: float
    processor_peak_rss_mib: float
    succeeded: bool


def decode_floor(path: Path) -> float:
    """Seconds a bare PyAV decode of every frame takes, in a fresh interpreter."""
    out = subprocess.run(
        [sys.executable, "-c", _DECODE, str(path)], capture_output=True, text=True, check=True
    )
    return float(out.stdout.strip())


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def run_pipeline(
    stack: Stack, db: firestore.Client, path: Path, content_type: str
) -> tuple[float, bool]:
    """Seconds from the job's first stage starting to its end, and whether it succeeded."""
    with stack.api() as api:
        source = upload_file(api, path, content_type)
        # The generated samples hold no speech; benchmarks/transcription.py measures that.
        job_input = {"source": source, "options": {"transcribe": False}}
        response = api.post("/v1/jobs", json={"pipeline": "media-analysis", "input": job_input})
        job_id = response.raise_for_status().json()["job_id"]
    ref = db.collection(stack.settings.jobs_collection).document(job_id)
    while True:
        job = ref.get().to_dict() or {}
        if JobStatus(job["status"]).terminal:
            break
        time.sleep(0.5)
    seconds = (job["finished_at"] - job["started_at"]).total_seconds()
    return seconds, job["status"] == JobStatus.SUCCEEDED


def measure(
    name: str, path: Path, content_type: str, media_seconds: float, log_dir: Path
) -> MediaRun:
    floor = decode_floor(path)
    stack = start_stack(log_dir / name, LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:8]}")
    try:
        db = firestore.Client(project=stack.settings.project_id)
        seconds, ok = run_pipeline(stack, db, path, content_type)
        assert stack.processor.pid is not None
        peak = peak_rss_mib(stack.processor.pid)
    finally:
        stack.stop()
    return MediaRun(
        name=name,
        media_seconds=media_seconds,
        decode_floor_seconds=round(floor, 2),
        pipeline_seconds=round(seconds, 2),
        ratio_to_floor=round(seconds / floor, 2),
        pipeline_speed_x_realtime=round(media_seconds / seconds, 1),
        processor_peak_rss_mib=round(peak, 1),
        succeeded=ok,
    )


def _bursts(seconds: float) -> list[float]:
    return [seconds * f for f in (0.1, 0.35, 0.6, 0.85)]


def slug(name: str) -> str:
    """`audio 60 min (AAC)` → `audio-60-min`."""
    return name.split(" (")[0].replace(" ", "-")


def make_samples(
    directory: Path, minutes_audio: float, minutes_video: float
) -> list[tuple[str, Path, str, float]]:
    long_audio = directory / "audio-long.m4a"
    short_audio = directory / "audio-short.m4a"
    video = directory / "video-720p.mp4"
    make_audio(
        long_audio, duration_seconds=minutes_audio * 60, bursts_at=_bursts(minutes_audio * 60)
    )
    make_audio(
        short_audio, duration_seconds=minutes_video * 60, bursts_at=_bursts(minutes_video * 60)
    )
    cuts = [minutes_video * 60 * f for f in (0.15, 0.3, 0.45, 0.6, 0.75, 0.9)]
    make_video(
        video,
        duration_seconds=minutes_video * 60,
        cuts_at=cuts,
        bursts_at=_bursts(minutes_video * 60),
        size=(1280, 720),
        fps=25,
    )
    return [
        (f"audio {minutes_audio:g} min (AAC)", long_audio, "audio/mp4", minutes_audio * 60),
        (f"audio {minutes_video:g} min (AAC)", short_audio, "audio/mp4", minutes_video * 60),
        (f"video {minutes_video:g} min 720p25 (H.264+AAC)", video, "video/mp4", minutes_video * 60),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--audio-minutes", type=float, default=60)
    parser.add_argument("--video-minutes", type=float, default=10)
    parser.add_argument("--json", type=Path, help="also write the results here, as JSON")
    args = parser.parse_args()

    def run(work: Path, _started: object) -> list[dict[str, object]]:
        samples = make_samples(work, args.audio_minutes, args.video_minutes)
        return [
            asdict(measure(slug(name), path, kind, secs, work))
            for name, path, kind, secs in samples
        ]

    standalone("media", args.json, run)


if __name__ == "__main__":
    main()
