"""One push delivery of a stage, timed: when Pub/Sub took its message, when we claimed the stage,
and the `stage ended` log line (the metrics' source) when this delivery's work ends."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

from jobs.contract.models import utcnow
from jobs.contract.runs import Lease
from jobs.telemetry import metric_logs
from jobs.telemetry.metric_logs import StageOutcome


@dataclass(frozen=True)
class Delivery:
    """Timing of one delivery; made when its stage is claimed."""

    published_at: datetime | None = None
    claimed_at: datetime = field(default_factory=utcnow)
    _claimed_clock: float = field(default_factory=time.monotonic)

    @property
    def queue_wait_seconds(self) -> float | None:
        """From the message's publish to the claim; a redelivery counts from the first publish."""
        if self.published_at is None:
            return None
        return max(0.0, (self.claimed_at - self.published_at).total_seconds())

    def ended(self, lease: Lease, outcome: StageOutcome, error_code: str | None = None) -> None:
        """Log this delivery's end of the stage with its duration, queue wait and attempt."""
        metric_logs.stage_ended(
            job_id=lease.job_id,
            stage=lease.stage,
            outcome=outcome,
            attempt=lease.attempt,
            duration_seconds=time.monotonic() - self._claimed_clock,
            queue_wait_seconds=self.queue_wait_seconds,
            error_code=error_code,
            item=lease.item,
        )
