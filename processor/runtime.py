"""What a processor instance holds while it runs stages, and how it answers Pub/Sub."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from jobs.cloud import endings
from jobs.cloud.publisher import StagePublisher
from jobs.cloud.quotas import Quotas
from jobs.cloud.storage import Storage
from jobs.cloud.store import JobStore
from jobs.contract.models import Job, StageMessage
from jobs.contract.settings import Settings
from processor.functions import StageFunctions
from processor.leases import Leases


class Outcome(StrEnum):
    ACK = "ack"  # done with this message: success, permanent failure, or nothing to do
    BUSY = "busy"  # another instance holds the stage: deliver again later
    RETRY = "retry"  # this attempt failed transiently: deliver again later


@dataclass
class Runtime:
    """What the runner needs, built once per processor instance."""

    settings: Settings
    store: JobStore
    publisher: StagePublisher
    storage: Storage
    leases: Leases
    functions: StageFunctions
    # Stages running now, and lease releases of stages cut short by shutdown.
    running: set[asyncio.Task[Any]] = field(default_factory=set)
    releases: set[asyncio.Task[None]] = field(default_factory=set)

    async def drain(self, timeout_seconds: float) -> None:
        """Stop the stages still running at shutdown and wait (bounded) until their leases are
        released, so their redelivery can start at once on another instance."""
        for task in self.running:
            task.cancel()
        if self.running:
            await asyncio.wait(self.running, timeout=timeout_seconds)
        if self.releases:
            await asyncio.wait(self.releases, timeout=timeout_seconds)


async def publish(runtime: Runtime, messages: list[StageMessage]) -> None:
    """Publish these stage (or item) messages, all at once; raises if any publish failed (after
    trying every one: a redelivery then re-publishes what is still due)."""
    await runtime.publisher.publish_all(messages)


async def job_ended(runtime: Runtime, job: Job) -> None:
    """See `jobs.cloud.endings.job_ended`: the processor ended this job."""
    await endings.job_ended(job, Quotas(runtime.store, runtime.settings), runtime.publisher)
