"""`make bench`: every benchmark in one run, on one set of emulators, written to results.md.

.venv/bin/python -m benchmarks [--quick]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import load, media, overhead, progress, recovery, scale, submit, throughput
from benchmarks.environment import emulators_running

RESULTS = Path(__file__).with_name("results.md")
OUT = Path(__file__).with_name("out")


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kib = int(Path("/proc/meminfo").read_text().split()[1])
    memory = f"{memory_kib / 1024**2:.0f} GiB"
    return f"{os.cpu_count()} cores ({cpu}), {memory}, Python {platform.python_version()}"


def run_all(work: Path, quick: bool) -> dict[str, Any]:
    from google.cloud import firestore

    from deploy.local.ephemeral import start_stack

    results: dict[str, Any] = {}
    started = emulators_running(work)
    with started as emulators:
        results["submit"] = submit.run(work, requests=100 if quick else 400)
        results["overhead"] = overhead.run(work, rounds=5 if quick else 20)
        results["throughput"] = throughput.run(work, 15 if quick else 60, emulators)
        results["progress"] = progress.run(work)
        results["recovery"] = recovery.run(work, kills=3 if quick else 10)
        stack = start_stack(work / "load")
        try:
            db = firestore.Client(project=stack.settings.project_id)
            results["load"] = load.run_load(stack, db, jobs=200, clients=20).__dict__
        finally:
            stack.stop()
        minutes = (6.0, 2.0) if quick else (60.0, 10.0)
        results["media"] = [
            media.measure(media.slug(name), path, kind, seconds, work).__dict__
            for name, path, kind, seconds in media.make_samples(work, *minutes)
        ]
        results["scale"] = scale.run(work / "scale", scale.QUICK if quick else scale.Plan())
    return results


def markdown(results: dict[str, Any], when: str, where: str) -> str:
    s, o, t, p, lo = (results[k] for k in ("submit", "overhead", "throughput", "progress", "load"))
    lines = [
        f"# Benchmark results\n\n{when} on {where}; emulators on the same machine, load average "
        f"{os.getloadavg()[0]:.1f} at the end.\n",
        "| benchmark | longrun | floor | ratio | target |",
        "|---|---|---|---|---|",
    ]
    for run in s:
        lines.append(
            f"| submit, {run['clients']} client(s), p50 / p99 | {run['api']['p50_ms']} / "
            f"{run['api']['p99_ms']} ms | {run['floor']['p50_ms']} / {run['floor']['p99_ms']} ms | "
            f"{run['p50_ratio']} / {run['p99_ratio']} | ≤ 1.3 / ≤ 1.5 |"
        )
    lines.append(
        f"| overhead, {o['stages']} empty stages, submit → listener sees the end (median) | "
        f"{o['longrun_median_ms']} ms | {o['floor_median_ms']} ms | {o['ratio']} | ≤ 1.3 |"
    )
    lines.append(
        f"| throughput, 3 tiny stages, 1 processor process | {t['jobs_per_second']} jobs/s, "
        f"{t['lost']} lost, longrun CPU share {t['longrun_cpu_share']} | "
        f"{t['floor']['jobs_per_second']} jobs/s | {t['ratio_one_process']} | ≥ 0.8 |"
    )
    lines.append(
        f"| throughput, a processor process per core ({t['per_core']['processors']}) | "
        f"{t['per_core']['jobs_per_second']} jobs/s, {t['per_core']['lost']} lost | "
        f"{t['floor']['jobs_per_second']} jobs/s | {t['ratio_per_core']} | ≥ 1.3 |"
    )
    lines.append(
        f"| progress, {p['progress_calls']} calls in {p['stage_seconds']} s | "
        f"{p['progress_writes']} writes ({p['writes_per_second']}/s), longest listener gap "
        f"{p['longest_gap_between_updates_seconds']} s | | | ≤ 1 write/s, gap ≤ ~1 s |"
    )
    lines.append(
        f"| load, {lo['jobs']} jobs from {lo['clients']} clients | {lo['succeeded']} succeeded, "
        f"{lo['stages_run_more_than_once']} stages run twice, {lo['jobs_per_second']} jobs/s | | | "
        "all succeed, none twice |"
    )
    r = results["recovery"]
    lines.append(
        f"| recovery, {r['kills']} SIGKILLs mid-stage, kill → stage runs again, p50 / p95 | "
        f"{r['rerun_p50_seconds']} / {r['rerun_p95_seconds']} s (lease {r['lease_seconds']:g} s) "
        "| | | p95 ≤ 20 s |"
    )
    for m in results["media"]:
        lines.append(
            f"| media, {m['name']} | {m['pipeline_seconds']} s ({m['pipeline_speed_x_realtime']}x "
            f"real time), peak RSS {m['processor_peak_rss_mib']} MiB | decode "
            f"{m['decode_floor_seconds']} s | {m['ratio_to_floor']} | ≤ 1.5, flat memory |"
        )
    lines += scale.markdown_rows(results["scale"])
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller runs, for a smoke test")
    args = parser.parse_args()
    with ExitStack() as cleanup:
        work = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="longrun-bench-")))
        results = run_all(work, args.quick)
    OUT.mkdir(exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    RESULTS.write_text(markdown(results, when, machine()))
    print(RESULTS.read_text())


if __name__ == "__main__":
    main()
