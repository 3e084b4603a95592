"""What one fanned-out job did, read back after it ended: its items (from their run documents)
and the timing of every delivery (from the processor processes' JSON logs).

- Bytes read per item: each span item's output carries what its ranged reader fetched.
- Item seconds: a delivery's claim to its end (`stage ended`, `duration_seconds`).
- Finish: from an item's `span analysed` line to its `stage ended` line, i.e. committing its
  output and the job's counts (and publishing the reduce, for the last one).
- Dispatch gap: on one process with nothing else in flight, from one delivery's end to its next
  claim, i.e. the push of the next message and the claim itself.
- Reduce: the reduce delivery's claim to its end, and its wait from the last item's commit.
"""

from __future__ import annotations

import gzip
import itertools
import json
import statistics
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from google.cloud import firestore

from jobs.cloud.storage import Storage

FANNED_OUT = ("audio", "scenes")


@dataclass
class Delivery:
    process: str
    stage: str
    item: int | None
    claimed: datetime
    ended: datetime | None = None
    outcome: str | None = None
    seconds: float | None = None
    analysed: datetime | None = None


@dataclass
class FanOut:
    """The items of one job and the timing of its deliveries."""

    items: dict[str, int]
    bytes_read: list[int]
    item_seconds: dict[str, list[float]]
    finish_seconds: list[float]
    dispatch_gaps: list[float]
    reduce_seconds: dict[str, float]
    reduce_wait_seconds: dict[str, float]
    redelivered: int
    items_by_process: dict[str, int]
    stages_seconds: dict[str, float] = field(default_factory=dict)


def read_fan_out(
    db: firestore.Client, storage: Storage, collection: str, job_id: str, logs: list[Path]
) -> FanOut:
    """Read back what job `job_id` did from its run documents and the processors' `logs`."""
    runs = {
        snap.id: snap.to_dict() or {}
        for snap in db.collection(collection).document(job_id).collection("runs").stream()
    }
    deliveries = _deliveries(job_id, logs)
    items = {s: sum(1 for name in runs if name.startswith(f"{s}~")) for s in FANNED_OUT}
    ended = [d for d in deliveries if d.ended is not None]
    item_ends = [d for d in ended if d.item is not None and d.outcome == "succeeded"]
    reduces = {d.stage: d for d in ended if d.stage in FANNED_OUT and d.outcome == "succeeded"}
    return FanOut(
        items=items,
        bytes_read=[
            _output(storage, run)["bytes_read"]
            for name, run in runs.items()
            if name.partition("~")[0] in FANNED_OUT and "~" in name
        ],
        item_seconds={
            s: sorted(d.seconds or 0.0 for d in item_ends if d.stage == s) for s in FANNED_OUT
        },
        finish_seconds=[
            (d.ended - d.analysed).total_seconds()
            for d in item_ends
            if d.ended is not None and d.analysed is not None
        ],
        dispatch_gaps=_dispatch_gaps(deliveries),
        reduce_seconds={s: d.seconds or 0.0 for s, d in reduces.items()},
        reduce_wait_seconds=_reduce_waits(runs),
        redelivered=sum(_redelivered(name, run, runs) for name, run in runs.items()),
        items_by_process={
            path.stem: sum(1 for d in item_ends if d.process == path.stem) for path in logs
        },
        stages_seconds={
            name: (run["finished_at"] - run["started_at"]).total_seconds()
            for name, run in runs.items()
            if "~" not in name and run.get("finished_at") and run.get("started_at")
        },
    )


def _redelivered(name: str, run: dict[str, Any], runs: dict[str, dict[str, Any]]) -> int:
    """Deliveries of a run past the ones it needs: one, or two for any stage that fanned out
    (its split, then its reduce), such as `clips` besides the span analyses."""
    needed = 2 if f"{name}~0" in runs else 1
    return max(0, (run.get("deliveries") or needed) - needed)


def _output(storage: Storage, run: dict[str, Any]) -> dict[str, Any]:
    """A run's output, from its document or from Storage when it was too big for it."""
    uri = run.get("output_uri")
    if uri is None:
        output: dict[str, Any] = run["output"]
        return output
    stored: dict[str, Any] = json.loads(gzip.decompress(storage.read_bytes(uri)))
    return stored


def _deliveries(job_id: str, logs: list[Path]) -> list[Delivery]:
    """Every claimed delivery of the job, from each process's log, in claim order."""
    found: list[Delivery] = []
    for path in logs:
        open_by_key: dict[tuple[str, int | None], Delivery] = {}
        for line in _lines(path):
            if line.get("job_id") != job_id:
                continue
            item = int(line["item"]) if line.get("item") is not None else None
            key = (line["stage"], item)
            when = datetime.fromisoformat(line["time"])
            match line["message"]:
                case "claim claimed":
                    open_by_key[key] = Delivery(path.stem, line["stage"], item, when)
                    found.append(open_by_key[key])
                case "span analysed" if key in open_by_key:
                    open_by_key[key].analysed = when
                case "stage ended" if key in open_by_key:
                    delivery = open_by_key.pop(key)
                    delivery.ended, delivery.outcome = when, line.get("outcome")
                    delivery.seconds = line.get("duration_seconds")
    return sorted(found, key=lambda d: d.claimed)


def _lines(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.startswith("{")]


def _dispatch_gaps(deliveries: list[Delivery]) -> list[float]:
    """End of one delivery to the next claim on the same process, when that process had nothing
    else in flight in between."""
    gaps = []
    for process in {d.process for d in deliveries}:
        mine = [d for d in deliveries if d.process == process and d.ended is not None]
        for before, after in itertools.pairwise(mine):
            assert before.ended is not None
            others = [d for d in mine if d.claimed < after.claimed and d is not before]
            busy = any(d.ended is not None and d.ended > before.ended for d in others)
            if not busy and after.claimed >= before.ended and after.item is not None:
                gaps.append((after.claimed - before.ended).total_seconds())
    return sorted(gaps)


def _reduce_waits(runs: dict[str, dict[str, Any]]) -> dict[str, float]:
    """From the last item's commit to the reduce's commit, per fanned-out stage."""
    waits = {}
    for stage in FANNED_OUT:
        ends = [run["finished_at"] for name, run in runs.items() if name.startswith(f"{stage}~")]
        finished = runs.get(stage, {}).get("finished_at")
        if ends and finished:
            waits[stage] = round((finished - max(ends)).total_seconds(), 3)
    return waits


def summary(values: list[float] | list[int]) -> dict[str, float]:
    """Min, median and max of a list (empty: {})."""
    if not values:
        return {}
    return {
        "min": round(min(values), 3),
        "median": round(statistics.median(values), 3),
        "max": round(max(values), 3),
    }
