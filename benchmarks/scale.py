"""Scale: a long recording's media-analysis job on one processor process and on two.

In one run, on one set of emulators, each job on a fresh stack:
- a generated `--hours` recording of 720p30 H.264 with AAC sound and a chat log
  (benchmarks/recordings.py) on 1 processor process, then on 2: the job's wall time (first stage
  start to end) and the scaling efficiency t1 / (2 * t2); with `--pinned`, again with each
  processor process held to a core of its own, as each Cloud Run instance has its own vCPUs;
- bytes read by each span item, against its share of the file;
- each processor process's peak RSS (VmHWM) at the job's end, against the same job on a
  recording a third as long;
- the processors' CPU time over the job (utime + stime of every processor process) against a bare
  decode of every frame of the same file (benchmarks/floors.py), the decoder threaded as the
  pipeline threads it, and single-threaded;
- a `--audio-hours` audio-only recording (mono AAC, 16 kHz) on 2 processors: wall time, items,
  bytes read, and its loudness series downloaded through the API's artifact route;
- what the Cloud Run estimate stands on (benchmarks/projection.py): the analyses' CPU on a short
  1080p60 clip, longrun's CPU over its analyses', the per-item overhead, the reduce.

    .venv/bin/python -m benchmarks.scale [--hours 3] [--audio-hours 12] [--json FILE]

Recordings are cached by their parameters (`--cache-dir`), so a rerun skips making them. On the
shared 2-core machine at load 7 to 19, `--hours 3` took an hour (each 3-hour job about 12
minutes, the two whole-file decodes half an hour); `--hours 1 --pinned` took 26 minutes.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from benchmarks import floors, projection
from benchmarks.environment import standalone
from benchmarks.fanout import FanOut, read_fan_out, summary
from benchmarks.recordings import RecordingSpec, cached_chat, cached_recording
from cli.uploading import upload_file
from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.storage import Storage
from jobs.contract.models import JobStatus
from samples.media import make_video

CACHE = Path(tempfile.gettempdir()) / "longrun-scale-cache"
JOB_TIMEOUT_SECONDS = 3 * 3600.0
MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    """What to measure: the lengths, the pictures and the clip the estimate stands on."""

    hours: float = 3.0
    audio_hours: float = 12.0
    video: tuple[int, int, int] = (1280, 720, 30)
    block_seconds: float = 360.0
    clip: tuple[int, int, int] = projection.VOD_VIDEO
    clip_seconds: float = 10.0
    pinned: bool = False

    def recording(self, fraction: float = 1.0) -> RecordingSpec:
        seconds = round(self.hours * 3600 * fraction)
        return RecordingSpec(seconds=seconds, video=self.video, block_seconds=self.block_seconds)

    def audio(self) -> RecordingSpec:
        return RecordingSpec(
            seconds=round(self.audio_hours * 3600),
            video=None,
            sample_rate=16000,
            channels=1,
            block_seconds=self.block_seconds,
            audio_bit_rate=32000,
        )


# A smoke run (`python -m benchmarks --quick`, the test): 18 minutes of tiny pictures in
# 24-second blocks, still two spans per fanned-out stage.
QUICK = Plan(
    hours=0.3,
    audio_hours=0.3,
    video=(320, 180, 30),
    block_seconds=24.0,
    clip=(320, 180, 60),
    clip_seconds=2.0,
)


@dataclass
class ProcessUse:
    name: str
    cpu_seconds: float
    peak_rss_mib: float
    items_run: int = 0


@dataclass
class JobRun:
    """One media-analysis job on a fresh stack, and what its processor processes spent."""

    recording: str
    processors: int
    pinned: bool
    media_seconds: float
    file_mib: float
    succeeded: bool
    wall_seconds: float
    processes: list[ProcessUse]
    processor_cpu_seconds: float
    front_end_cpu_seconds: float | None
    items: dict[str, int]
    bytes_read_mib: dict[str, float]
    bytes_read_of_share: dict[str, float]
    item_seconds: dict[str, dict[str, float]]
    finish_seconds: dict[str, float]
    dispatch_gap_seconds: dict[str, float]
    reduce_seconds: dict[str, float]
    reduce_wait_seconds: dict[str, float]
    stages_seconds: dict[str, float]
    redelivered: int
    artifact: dict[str, Any] = field(default_factory=dict)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of process `pid` so far, every thread included."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mib(pid: int) -> float:
    """The process's peak resident memory so far (VmHWM)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def pin(pid: int, core: int) -> None:
    """Hold every thread of `pid` to one core; threads it starts later inherit it."""
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            os.sched_setaffinity(int(task.name), {core})
        except ProcessLookupError:
            continue  # a thread that ended meanwhile


def run_job(
    log_dir: Path,
    path: Path,
    chat: Path | None,
    spec: RecordingSpec,
    processors: int,
    pinned: bool = False,
) -> JobRun:
    """Analyse `path` on a fresh stack of `processors` processes, measuring them."""
    stack = start_stack(
        log_dir, processors=processors, LONGRUN_JOBS_COLLECTION=f"scale-{uuid.uuid4().hex[:8]}"
    )
    try:
        pids = stack.processor_pids()
        if pinned:
            for index, pid in enumerate(pids):
                pin(pid, index % (os.cpu_count() or 1))
        with stack.api() as api:
            source = upload_file(api, path, spec.content_type)
            chat_id = upload_file(api, chat, "application/x-ndjson") if chat else None
            front = stack.processor.pid if processors > 1 else None
            before = {pid: cpu_seconds(pid) for pid in [*pids, *([front] if front else [])]}
            job_id = _submit(api, source, chat_id)
            job = _wait(stack, job_id)
            spent = {pid: cpu_seconds(pid) - cpu for pid, cpu in before.items()}
            uses = [
                ProcessUse(log.stem, round(spent[pid], 2), round(peak_rss_mib(pid), 1))
                for log, pid in zip(stack.processor_logs, pids, strict=True)
            ]
            artifact = _loudness_artifact(api, job_id) if spec.video is None else {}
        fan_out = read_fan_out(
            firestore.Client(project=stack.settings.project_id),
            Storage(stack.settings),
            stack.settings.jobs_collection,
            job_id,
            stack.processor_logs,
        )
    finally:
        stack.stop()
    for use in uses:
        use.items_run = fan_out.items_by_process.get(use.name, 0)
    return _job_run(
        spec, path, processors, pinned, job, uses, spent.get(front or -1), fan_out, artifact
    )


def _submit(api: httpx.Client, source: str, chat: str | None) -> str:
    # The figures compare the span analyses with a bare decode; transcription's cost is its own
    # row in the README's estimate (it scales with speech, not with pixels).
    options = {"transcribe": False}
    body = {"source": source, "options": options, **({"chat": chat} if chat else {})}
    response = api.post("/v1/jobs", json={"pipeline": "media-analysis", "input": body})
    job_id: str = response.raise_for_status().json()["job_id"]
    return job_id


def _wait(stack: Stack, job_id: str) -> dict[str, Any]:
    db = firestore.Client(project=stack.settings.project_id)
    ref = db.collection(stack.settings.jobs_collection).document(job_id)
    deadline = time.monotonic() + JOB_TIMEOUT_SECONDS
    while True:
        job = ref.get().to_dict() or {}
        if JobStatus(job["status"]).terminal or time.monotonic() > deadline:
            return job
        time.sleep(1.0)


def _loudness_artifact(api: httpx.Client, job_id: str) -> dict[str, Any]:
    """The loudness series, downloaded through `GET /v1/jobs/{id}/artifacts/loudness.json`."""
    response = api.get(f"/v1/jobs/{job_id}/artifacts/loudness.json", follow_redirects=True)
    found: dict[str, Any] = {"status": response.status_code, "bytes": len(response.content)}
    if response.status_code == 200:
        series = response.json()
        found["windows"] = len(series["momentary_lufs"])
        found["window_seconds"] = series["window_seconds"]
    return found


def _job_run(
    spec: RecordingSpec,
    path: Path,
    processors: int,
    pinned: bool,
    job: dict[str, Any],
    uses: list[ProcessUse],
    front_end_cpu: float | None,
    fan_out: FanOut,
    artifact: dict[str, Any],
) -> JobRun:
    size = path.stat().st_size
    per_item = max(fan_out.items.values() or [1])
    share = size / per_item
    succeeded = job.get("status") == JobStatus.SUCCEEDED
    wall = (job["finished_at"] - job["started_at"]).total_seconds() if succeeded else float("nan")
    return JobRun(
        recording=spec.key(),
        processors=processors,
        pinned=pinned,
        media_seconds=spec.seconds,
        file_mib=round(size / MIB, 1),
        succeeded=succeeded,
        wall_seconds=round(wall, 1),
        processes=uses,
        processor_cpu_seconds=round(sum(u.cpu_seconds for u in uses), 1),
        front_end_cpu_seconds=None if front_end_cpu is None else round(front_end_cpu, 2),
        items=fan_out.items,
        bytes_read_mib=summary([b / MIB for b in fan_out.bytes_read]),
        bytes_read_of_share=summary([b / share for b in fan_out.bytes_read]),
        item_seconds={s: summary(v) for s, v in fan_out.item_seconds.items()},
        finish_seconds=summary(fan_out.finish_seconds),
        dispatch_gap_seconds=summary(fan_out.dispatch_gaps),
        reduce_seconds={s: round(v, 3) for s, v in fan_out.reduce_seconds.items()},
        reduce_wait_seconds=fan_out.reduce_wait_seconds,
        stages_seconds={s: round(v, 2) for s, v in fan_out.stages_seconds.items()},
        redelivered=fan_out.redelivered,
        artifact=artifact,
    )


def clip(plan: Plan, cache: Path) -> Path:
    """A short clip of textured, drifting pictures at the estimate's resolution (cached)."""
    width, height, fps = plan.clip
    path = cache / f"clip-{width}x{height}x{fps}-{plan.clip_seconds:g}s.mp4"
    if not path.exists():
        cache.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial.mp4")
        seconds = plan.clip_seconds
        make_video(
            partial,
            duration_seconds=seconds,
            cuts_at=[seconds / 2],
            bursts_at=[seconds / 4],
            fps=fps,
            size=(width, height),
        )
        partial.rename(path)
    return path


def run(work: Path, plan: Plan, cache: Path = CACHE) -> dict[str, Any]:
    """Every measurement of the scale benchmark, as one JSON-able report."""
    load_before = os.getloadavg()
    full, third, audio = plan.recording(), plan.recording(1 / 3), plan.audio()
    path, chat = cached_recording(full, cache), cached_chat(full, cache)
    third_path, third_chat = cached_recording(third, cache), cached_chat(third, cache)
    audio_path = cached_recording(audio, cache)
    clip_path = clip(plan, cache)

    span = projection.span_seconds(plan.video)
    start = span if full.seconds >= 2 * span else 0.0
    floor = {
        "decode_threaded": asdict(floors.decode(path, "AUTO")),
        "decode_single_thread": asdict(floors.decode(path, "NONE")),
        "one_span": {"start": start, "end": min(full.seconds, start + span)},
        "one_span_analyses": floors.analyses(path, start, min(full.seconds, start + span)),
        "one_span_analyses_third": floors.analyses(
            third_path, start, min(third.seconds, start + span)
        ),
        "clip": {"video": plan.clip, "seconds": plan.clip_seconds},
        "clip_analyses": floors.analyses(clip_path, 0.0, plan.clip_seconds),
    }
    runs = {
        "one": run_job(work / "one", path, chat, full, 1),
        "two": run_job(work / "two", path, chat, full, 2),
        "third": run_job(work / "third", third_path, third_chat, third, 1),
        "audio": run_job(work / "audio", audio_path, None, audio, 2),
    }
    if plan.pinned:
        runs["one_pinned"] = run_job(work / "one-pinned", path, chat, full, 1, pinned=True)
        runs["two_pinned"] = run_job(work / "two-pinned", path, chat, full, 2, pinned=True)
    report: dict[str, Any] = {
        "plan": asdict(plan),
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "floors": floor,
        "runs": {name: asdict(job) for name, job in runs.items()},
    }
    report["figures"] = figures(report)
    report["projection"] = projection.project(measured(report))
    return report


def _ratio(a: float, b: float) -> float:
    return round(a / b, 2) if b else float("nan")


def figures(report: dict[str, Any]) -> dict[str, Any]:
    """The headline figures, each a ratio of two things measured in this run."""
    runs, floor = report["runs"], report["floors"]
    one, two, third = runs["one"], runs["two"], runs["third"]
    found: dict[str, Any] = {
        "scaling_efficiency": _ratio(one["wall_seconds"], 2 * two["wall_seconds"]),
        "cpu_over_threaded_decode": _ratio(
            one["processor_cpu_seconds"], floor["decode_threaded"]["cpu_seconds"]
        ),
        "cpu_over_single_thread_decode": _ratio(
            one["processor_cpu_seconds"], floor["decode_single_thread"]["cpu_seconds"]
        ),
        "cpu_over_threaded_decode_two_processors": _ratio(
            two["processor_cpu_seconds"], floor["decode_threaded"]["cpu_seconds"]
        ),
        "longrun_cpu_factor": longrun_cpu_factor(report),
        "peak_rss_full_over_third": _ratio(
            max(p["peak_rss_mib"] for p in one["processes"]),
            max(p["peak_rss_mib"] for p in third["processes"]),
        ),
        "cpu_share_of_machine_one": _ratio(
            one["processor_cpu_seconds"], one["wall_seconds"] * (os.cpu_count() or 1)
        ),
        "cpu_share_of_machine_two": _ratio(
            two["processor_cpu_seconds"], two["wall_seconds"] * (os.cpu_count() or 1)
        ),
    }
    if "two_pinned" in runs:
        found["scaling_efficiency_pinned"] = _ratio(
            runs["one_pinned"]["wall_seconds"], 2 * runs["two_pinned"]["wall_seconds"]
        )
    return found


def longrun_cpu_factor(report: dict[str, Any]) -> float:
    """The 1-processor job's CPU over what its analyses alone cost: one span's analyses (run
    in-process from the local file) times the spans of the recording."""
    one, floor = report["runs"]["one"], report["floors"]
    span = floor["one_span"]["end"] - floor["one_span"]["start"]
    per_second = sum(a["cpu"] for a in floor["one_span_analyses"].values()) / span
    return _ratio(one["processor_cpu_seconds"], per_second * one["media_seconds"])


def measured(report: dict[str, Any]) -> projection.Measured:
    """What the Cloud Run estimate takes from this run."""
    two, floor = report["runs"]["two"], report["floors"]
    clip_seconds = floor["clip"]["seconds"]
    items = max(two["items"].values())
    stages = two["stages_seconds"]
    reduce = max(two["reduce_seconds"].values() or [0.0])
    return projection.Measured(
        scenes_cpu_per_media_second=floor["clip_analyses"]["scenes"]["cpu"] / clip_seconds,
        audio_cpu_per_media_second=floor["clip_analyses"]["audio"]["cpu"] / clip_seconds,
        longrun_cpu_factor=report["figures"]["longrun_cpu_factor"],
        item_overhead_seconds=two["dispatch_gap_seconds"].get("median", 0.0)
        + two["finish_seconds"].get("median", 0.0),
        probe_seconds=stages.get("probe", 0.0),
        reduce_seconds_per_item=reduce / items,
        tail_seconds=sum(stages.get(s, 0.0) for s in ("highlights", "thumbnails", "report")),
    )


def _length(seconds: float) -> str:
    """`3 h`, `20 min`."""
    return f"{seconds / 3600:g} h" if seconds >= 3600 else f"{seconds / 60:g} min"


def markdown_rows(report: dict[str, Any]) -> list[str]:
    """The scale benchmark's rows of the results table (benchmark, longrun, floor, ratio,
    target)."""
    runs, floor, fig = report["runs"], report["floors"], report["figures"]
    one, two, third, audio = (runs[k] for k in ("one", "two", "third", "audio"))
    length = _length(one["media_seconds"])
    threaded, single = floor["decode_threaded"], floor["decode_single_thread"]
    rows = [
        f"| scale, {length} 720p30 + chat, wall time on 1 / 2 processor processes | "
        f"{one['wall_seconds']} / {two['wall_seconds']} s | | efficiency "
        f"{fig['scaling_efficiency']} | ≥ 0.8 |",
    ]
    if "two_pinned" in runs:
        pinned = runs["one_pinned"], runs["two_pinned"]
        rows.append(
            f"| scale, the same, each processor process on a core of its own | "
            f"{pinned[0]['wall_seconds']} / {pinned[1]['wall_seconds']} s | | efficiency "
            f"{fig['scaling_efficiency_pinned']} | ≥ 0.8 |"
        )
    share = one["file_mib"] / max(one["items"].values())
    bytes_read = one["bytes_read_mib"]
    rows += [
        f"| scale, processor CPU for the {length} job (1 process) | "
        f"{one['processor_cpu_seconds']} s | decode {threaded['cpu_seconds']} s threaded, "
        f"{single['cpu_seconds']} s single-threaded | {fig['cpu_over_threaded_decode']} / "
        f"{fig['cpu_over_single_thread_decode']} | ≤ 1.3 |",
        f"| scale, bytes read per span item, min / median / max | {bytes_read['min']} / "
        f"{bytes_read['median']} / {bytes_read['max']} MiB | file / items {share:.1f} MiB | "
        f"{one['bytes_read_of_share']['median']:.2f} (max {one['bytes_read_of_share']['max']:.2f})"
        " | ≈ 1 |",
        f"| scale, peak RSS of the processor process, {length} against "
        f"{_length(third['media_seconds'])} | "
        f"{max(p['peak_rss_mib'] for p in one['processes'])} MiB | "
        f"{max(p['peak_rss_mib'] for p in third['processes'])} MiB | "
        f"{fig['peak_rss_full_over_third']} | flat |",
        f"| scale, {_length(audio['media_seconds'])} audio only, 2 processes | "
        f"{'succeeded' if audio['succeeded'] else 'FAILED'} in {audio['wall_seconds']} s, "
        f"{audio['items']['audio']} items of {audio['bytes_read_mib'].get('median')} MiB, "
        f"loudness.json {audio['artifact'].get('bytes', 0) / MIB:.1f} MiB through the API | | | "
        "succeeds, artifact downloads |",
    ]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, default=3.0, help="length of the 720p30 recording")
    parser.add_argument("--audio-hours", type=float, default=12.0)
    parser.add_argument(
        "--pinned", action="store_true", help="also run 1 and 2 processors, one core each"
    )
    parser.add_argument("--cache-dir", type=Path, default=CACHE)
    parser.add_argument("--json", type=Path, help="also write the results here, as JSON")
    args = parser.parse_args()
    plan = Plan(hours=args.hours, audio_hours=args.audio_hours, pinned=args.pinned)
    standalone("scale", args.json, lambda work, _started: run(work, plan, args.cache_dir))


if __name__ == "__main__":
    main()
