"""Small statistics the benchmarks share."""

from __future__ import annotations

import statistics


def latency_summary(seconds: list[float]) -> dict[str, float]:
    """p50, p95, p99 and max of a list of durations, in milliseconds."""
    ms = sorted(value * 1000 for value in seconds)
    centiles = statistics.quantiles(ms, n=100, method="inclusive")
    return {
        "p50_ms": round(centiles[49], 2),
        "p95_ms": round(centiles[94], 2),
        "p99_ms": round(centiles[98], 2),
        "max_ms": round(ms[-1], 2),
    }


def ratio(value: float, floor: float) -> float:
    return round(value / floor, 2) if floor else float("nan")
