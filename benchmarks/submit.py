"""Submit: how long `POST /v1/jobs` takes, against what its two writes cost on their own.

The floor is the same work done directly with Google's client libraries in the same run: one
Firestore document create and one Pub/Sub publish (batching off), at the same concurrency.
Rounds of the two alternate, so noise hits both alike. The push subscription is removed
meanwhile: no processor runs the jobs, and no push retries take the CPU from either side.

    .venv/bin/python -m benchmarks.submit --json benchmarks/out/submit.json
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
import httpx

from benchmarks.environment import standalone
from benchmarks.stats import latency_summary, ratio
from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.publisher import StagePublisher
from jobs.cloud.store import firestore_client
from jobs.contract.models import StageMessage, utcnow

JOB = {"pipeline": "diagnostic", "input": {"stages": 1, "work_units": 0}}


async def _api_round(api: httpx.AsyncClient) -> float:
    started = time.perf_counter()
    response = await api.post("/v1/jobs", json=JOB)
    response.raise_for_status()
    return time.perf_counter() - started


async def _in_parallel(task: Any, requests: int, clients: int) -> list[float]:
    """Run `task()` `requests` times from `clients` concurrent loops; the latencies."""
    latencies: list[float] = []
    remaining = iter(range(requests))

    async def client() -> None:
        for _ in remaining:
            latencies.append(await task())

    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies


async def measure(stack: Stack, requests: int, clients: int) -> dict[str, Any]:
    db = firestore_client(stack.settings)
    floor_collection = db.collection(f"floor-{uuid.uuid4().hex[:6]}")
    publisher = StagePublisher(stack.settings)

    async def floor_round() -> float:
        started = time.perf_counter()
        ref = floor_collection.document()
        await ref.create({"status": "queued", "created_at": utcnow(), "input": JOB["input"]})
        await publisher.publish(StageMessage(job_id=ref.id, stage="step-1"))
        return time.perf_counter() - started

    limits = httpx.Limits(max_connections=clients)
    api_latencies: list[float] = []
    floor_latencies: list[float] = []
    batch = max(clients * 4, requests // 10)
    async with httpx.AsyncClient(
        base_url=stack.api_url, timeout=60, limits=limits, headers=stack.auth_headers()
    ) as api:
        await _in_parallel(lambda: _api_round(api), clients * 2, clients)  # warm up
        await _in_parallel(floor_round, clients * 2, clients)
        for _ in range(max(1, requests // batch)):
            api_latencies += await _in_parallel(lambda: _api_round(api), batch, clients)
            floor_latencies += await _in_parallel(floor_round, batch, clients)
    await publisher.close()
    api_stats, floor_stats = latency_summary(api_latencies), latency_summary(floor_latencies)
    return {
        "clients": clients,
        "requests": requests,
        "api": api_stats,
        "floor": floor_stats,
        "p50_ratio": ratio(api_stats["p50_ms"], floor_stats["p50_ms"]),
        "p99_ratio": ratio(api_stats["p99_ms"], floor_stats["p99_ms"]),
    }


def _remove_push_subscription(stack: Stack) -> None:
    subscriber = pubsub_v1.SubscriberClient()
    name = f"{stack.settings.stages_topic}-push"
    subscriber.delete_subscription(
        subscription=subscriber.subscription_path(stack.settings.project_id, name)
    )
    subscriber.close()


def run(log_dir: Path, requests: int) -> list[dict[str, Any]]:
    stack = start_stack(log_dir / "submit", LONGRUN_JOBS_COLLECTION=f"bench-{uuid.uuid4().hex[:6]}")
    try:
        stack.processor.stop()
        _remove_push_subscription(stack)
        return [asyncio.run(measure(stack, requests, clients)) for clients in (1, 32)]
    finally:
        stack.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    standalone("submit", args.json, lambda work, _started: run(work, args.requests))


if __name__ == "__main__":
    main()
