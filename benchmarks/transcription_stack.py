"""Transcription through a stack: the wall time of a recording of read speech with 1 and 2
processors, and the processors' (and their decoders') peak memory.

The recording is the LibriVox utterances over and over for --minutes (benchmarks.transcription),
uploaded through the API as WAV and analysed by `media-analysis` with transcription on, on a
fresh stack per processor count (the emulators are shared). Wall time runs from the job's start
to its end (every stage: transcribe is nearly all of it); `transcribe_seconds` is that stage's.
With 2 processors the Pub/Sub emulator pushes 2 spans at once, one to each process: on this
2-core machine the ideal is half the time of 1.

    .venv/bin/python -m benchmarks.transcription_stack --minutes 60 [--processors 1 2]
        [--span-seconds 300] [--json benchmarks/out/transcription-stack.json]
"""

from __future__ import annotations

import argparse
import time
import uuid
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from google.cloud import firestore

from benchmarks.environment import standalone
from benchmarks.media import peak_rss_mib
from benchmarks.transcription import long_recording
from cli.uploading import upload_file
from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.store import job_from_document
from jobs.contract.models import Job
from samples.speech import librivox

POLL_SECONDS = 1.0


@dataclass(frozen=True)
class StackRun:
    processors: int
    media_seconds: float
    spans: int
    wall_seconds: float
    transcribe_seconds: float
    words: int
    succeeded: bool
    processor_peak_rss_mib: list[float]
    decoder_peak_rss_mib: list[float]


def run_job(stack: Stack, db: firestore.Client, path: Path) -> Job:
    """Submit the recording for media-analysis and wait for its end."""
    with stack.api() as api:
        source = upload_file(api, path, "audio/wav")
        body = {"pipeline": "media-analysis", "input": {"source": source}}
        job_id = api.post("/v1/jobs", json=body).raise_for_status().json()["job_id"]
    ref = db.collection(stack.settings.jobs_collection).document(job_id)
    while True:
        job = job_from_document(ref.get().to_dict() or {})
        if job.status.terminal:
            return job
        time.sleep(POLL_SECONDS)


def children(pid: int) -> list[int]:
    """The live child processes of `pid` (a processor's decoding processes)."""
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        text = (task / "children").read_text() if (task / "children").exists() else ""
        found += [int(child) for child in text.split()]
    return found


def measure(work: Path, path: Path, seconds: float, processors: int, span: float) -> StackRun:
    stack = start_stack(
        work / f"stack-{processors}",
        processors=processors,
        LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:8]}",
        LONGRUN_TRANSCRIPT_SPAN_SECONDS=str(span),
    )
    try:
        job = run_job(stack, firestore.Client(project=stack.settings.project_id), path)
        pids = stack.processor_pids()
        processor_peaks = [peak_rss_mib(pid) for pid in pids]
        decoder_peaks = [peak_rss_mib(child) for pid in pids for child in children(pid)]
    finally:
        stack.stop()
    stage = next(s for s in job.stages if s.name == "transcribe")
    transcript = (job.result or {}).get("transcript", {})
    return StackRun(
        processors=processors,
        media_seconds=round(seconds, 1),
        spans=stage.items.total if stage.items else 0,
        wall_seconds=_between(job.started_at, job.finished_at),
        transcribe_seconds=_between(stage.started_at, stage.finished_at),
        words=int(transcript.get("words", 0)),
        succeeded=job.status.value == "succeeded",
        processor_peak_rss_mib=[round(peak, 1) for peak in processor_peaks],
        decoder_peak_rss_mib=[round(peak, 1) for peak in decoder_peaks],
    )


def _between(start: datetime | None, end: datetime | None) -> float:
    return float("nan") if start is None or end is None else round((end - start).total_seconds(), 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--processors", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--span-seconds", type=float, default=300)
    parser.add_argument("--json", type=Path, help="also write the results here, as JSON")
    args = parser.parse_args()

    def run(work: Path, _started: object) -> dict[str, Any]:
        path = work / "speech.wav"
        seconds = long_recording(librivox(work / "packages"), path, args.minutes)
        runs = [measure(work, path, seconds, n, args.span_seconds) for n in args.processors]
        result: dict[str, Any] = {"runs": [asdict(r) for r in runs]}
        if len(runs) > 1 and runs[-1].wall_seconds:
            result["speed_up"] = round(runs[0].wall_seconds / runs[-1].wall_seconds, 2)
        return result

    standalone("transcription-stack", args.json, run)


if __name__ == "__main__":
    main()
