"""On paper: how long a 4-hour 1080p60 VOD's media-analysis job takes on Cloud Run with N
processor instances of 2 vCPU running 2 stages each, from what the scale benchmark measured.

The model, every term of which the README spells out with its numbers:

    wall(N) = fetch + probe + cold start + items(N) + reduce + tail

- items(N): the span items (scenes and audio, one per span each) scheduled in publish order on
  2N slots, each item taking its CPU seconds on one vCPU plus the per-item overhead measured
  (the push of its message and its claim, and the commit of its end). Each item's end writes the
  job document; with Firestore holding one document to `writes_per_second`, the ends queue.
- reduce: the scenes reduce measured, grown in proportion to the number of items it joins.
- tail: highlights, thumbnails and report as measured.
- fetch and cold start are not measured here: they are stated as assumptions.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import asdict, dataclass

from pipelines.media.spans import LIGHT_PIXELS_PER_SECOND, MAX_SPAN_SECONDS, MIN_SPAN_SECONDS

VOD_SECONDS = 4 * 3600.0
VOD_VIDEO = (1920, 1080, 60)
VOD_BYTES = 6e6 / 8 * VOD_SECONDS  # 6 Mbit/s, Twitch's usual ceiling for 1080p60: 10.8 GB
INSTANCES = (1, 10, 50)
STAGES_PER_INSTANCE = 2


@dataclass(frozen=True)
class Measured:
    """What the benchmark measured that the estimate stands on."""

    scenes_cpu_per_media_second: float  # the scene sampling of 1080p60, in-process, per second
    audio_cpu_per_media_second: float  # the loudness of the VOD's sound, per second
    longrun_cpu_factor: float  # processor CPU over the analyses' own CPU, whole job
    item_overhead_seconds: float  # dispatch gap + finish, per item
    probe_seconds: float
    reduce_seconds_per_item: float
    tail_seconds: float


@dataclass(frozen=True)
class Assumed:
    """What this machine cannot measure, stated instead."""

    source_mb_per_second: float = 100.0  # an https:// fetch into Cloud Storage
    cold_start_seconds: float = 10.0  # instances start in parallel; --cpu-boost
    writes_per_second: float = 1.0  # Firestore's sustained rate for one document


def span_seconds(video: tuple[int, int, int] = VOD_VIDEO) -> float:
    """The span length the media stages choose for this video (pipelines.media.spans)."""
    width, height, fps = video
    scaled = MAX_SPAN_SECONDS * LIGHT_PIXELS_PER_SECOND / (width * height * fps)
    return min(MAX_SPAN_SECONDS, max(MIN_SPAN_SECONDS, scaled))


def item_cpu_seconds(measured: Measured) -> dict[str, float]:
    """CPU seconds of one scenes item and one audio item of the VOD."""
    span = span_seconds()
    factor = measured.longrun_cpu_factor
    return {
        "scenes": span * measured.scenes_cpu_per_media_second * factor,
        "audio": span * measured.audio_cpu_per_media_second * factor,
    }


def schedule(durations: list[float], slots: int, writes_per_second: float | None) -> float:
    """When the last item's end is committed: items start in order on the first free slot, and
    each end's job-document write waits for the one before it (at `writes_per_second`)."""
    free = [0.0] * slots
    ends = []
    for duration in durations:
        start = heapq.heappop(free)
        ends.append(start + duration)
        heapq.heappush(free, start + duration)
    committed = 0.0
    for end in sorted(ends):
        gap = 1.0 / writes_per_second if writes_per_second else 0.0
        committed = max(end, committed + gap)
    return committed


def estimate(measured: Measured, assumed: Assumed, instances: int) -> dict[str, float]:
    """The estimate's terms, in seconds, for `instances` processor instances."""
    count = math.ceil(VOD_SECONDS / span_seconds())
    cpu = item_cpu_seconds(measured)
    overhead = measured.item_overhead_seconds
    durations = [cpu["scenes"] + overhead] * count + [cpu["audio"] + overhead] * count
    slots = instances * STAGES_PER_INSTANCE
    items_free = schedule(durations, slots, None)
    items_limited = schedule(durations, slots, assumed.writes_per_second)
    fixed = {
        "fetch": VOD_BYTES / (assumed.source_mb_per_second * 1e6),
        "probe": measured.probe_seconds,
        "cold_start": assumed.cold_start_seconds,
        "reduce": measured.reduce_seconds_per_item * count,
        "tail": measured.tail_seconds,
    }
    total = sum(fixed.values())
    return {
        "instances": instances,
        "items_per_stage": count,
        "slots": slots,
        **{k: round(v, 1) for k, v in fixed.items()},
        "items": round(items_free, 1),
        "items_firestore_bound": round(items_limited, 1),
        "total": round(total + items_free, 1),
        "total_firestore_bound": round(total + items_limited, 1),
        "total_from_upload": round(total - fixed["fetch"] + items_free, 1),
    }


def project(measured: Measured, assumed: Assumed = Assumed()) -> dict[str, object]:
    """The estimate for 1, 10 and 50 instances, with what it stood on."""
    return {
        "vod": {"seconds": VOD_SECONDS, "video": VOD_VIDEO, "bytes": VOD_BYTES},
        "span_seconds": span_seconds(),
        "item_cpu_seconds": {k: round(v, 2) for k, v in item_cpu_seconds(measured).items()},
        "measured": asdict(measured),
        "assumed": asdict(assumed),
        "rows": [estimate(measured, assumed, n) for n in INSTANCES],
    }
