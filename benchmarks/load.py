"""Load: many diagnostic jobs submitted by concurrent clients; none lost, none run twice.

Run it on its own (it starts the emulators and a stack unless FIRESTORE_EMULATOR_HOST and
PUBSUB_EMULATOR_HOST name running emulators):

    .venv/bin/python -m benchmarks.load --jobs 200 --clients 20 --json benchmarks/out/load.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from benchmarks.environment import standalone, wait_all_finished
from deploy.local.ephemeral import Stack, start_stack
from jobs.contract.models import JobStatus

DEFAULT_INPUT: dict[str, Any] = {"stages": 3, "work_units": 4, "unit_kib": 64}


@dataclass
class LoadReport:
    jobs: int
    clients: int
    stages_per_job: int
    submit_p50_ms: float
    submit_p95_ms: float
    submit_p99_ms: float
    submit_max_ms: float
    seconds_to_last_finish: float
    jobs_per_second: float
    succeeded: int
    not_finished: int
    stages_run_more_than_once: int
    stages_attempted_more_than_once: int


def _submit_all(
    stack: Stack, jobs: int, clients: int, job_input: dict[str, Any]
) -> tuple[list[str], list[float]]:
    ids: list[str] = []
    latencies: list[float] = []
    lock = threading.Lock()
    per_client = [jobs // clients + (1 if i < jobs % clients else 0) for i in range(clients)]

    def client(count: int) -> None:
        with httpx.Client(base_url=stack.api_url, timeout=60, headers=stack.auth_headers()) as api:
            for _ in range(count):
                started = time.perf_counter()
                response = api.post("/v1/jobs", json={"pipeline": "diagnostic", "input": job_input})
                elapsed = time.perf_counter() - started
                response.raise_for_status()
                with lock:
                    ids.append(response.json()["job_id"])
                    latencies.append(elapsed)

    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(client, per_client))
    return ids, latencies


def _body_completions(stack: Stack) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for line in (stack.log_dir / "processor.log").read_text().splitlines():
        if '"diagnostic step body completed"' in line:
            entry = json.loads(line)
            key = (entry["job_id"], entry["stage"])
            counts[key] = counts.get(key, 0) + 1
    return counts


def run_load(
    stack: Stack,
    db: firestore.Client,
    jobs: int = 200,
    clients: int = 20,
    job_input: dict[str, Any] | None = None,
    timeout: float = 300,
) -> LoadReport:
    """Submit `jobs` jobs from `clients` concurrent clients and account for every one."""
    job_input = job_input or DEFAULT_INPUT
    started = time.perf_counter()
    ids, latencies = _submit_all(stack, jobs, clients, job_input)
    docs = wait_all_finished(db, stack.settings.jobs_collection, ids, timeout)
    finished_at = max((d["finished_at"] for d in docs if d.get("finished_at")), default=None)
    first_created = min(d["created_at"] for d in docs)
    span = (
        (finished_at - first_created).total_seconds()
        if finished_at
        else time.perf_counter() - started
    )
    completions = _body_completions(stack)
    stages = [(d["job_id"], s["name"], s["attempts"]) for d in docs for s in d["stages"]]
    ms = sorted(latency * 1000 for latency in latencies)
    centiles = statistics.quantiles(ms, n=100, method="inclusive")
    return LoadReport(
        jobs=jobs,
        clients=clients,
        stages_per_job=len(docs[0]["stages"]),
        submit_p50_ms=round(centiles[49], 1),
        submit_p95_ms=round(centiles[94], 1),
        submit_p99_ms=round(centiles[98], 1),
        submit_max_ms=round(ms[-1], 1),
        seconds_to_last_finish=round(span, 2),
        jobs_per_second=round(jobs / span, 1),
        succeeded=sum(d["status"] == JobStatus.SUCCEEDED for d in docs),
        not_finished=sum(not JobStatus(d["status"]).terminal for d in docs),
        stages_run_more_than_once=sum(
            completions.get((job, stage), 0) > 1 for job, stage, _ in stages
        ),
        stages_attempted_more_than_once=sum(attempts > 1 for _, _, attempts in stages),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--json", type=Path, help="also write the report here, as JSON")
    args = parser.parse_args()

    def run(work: Path, _emulators: object) -> dict[str, Any]:
        stack = start_stack(work, LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:8]}")
        try:
            db = firestore.Client(project=stack.settings.project_id)
            return asdict(run_load(stack, db, jobs=args.jobs, clients=args.clients))
        finally:
            stack.stop()

    standalone("load", args.json, run)


if __name__ == "__main__":
    main()
