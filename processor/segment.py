"""One delivery's run of a stage body: the lease kept alive by a heartbeat, the stage's time
limit and the delivery's time budget enforced, progress written, a scratch directory given."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from collections.abc import AsyncIterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

from jobs.cloud.store import Decision
from jobs.contract import transitions
from jobs.contract.errors import LongrunError
from jobs.contract.models import Artifact, Job, StageStatus, utcnow
from jobs.contract.pipeline import StageSpec
from jobs.contract.runs import Lease
from processor.context import Inputs, StageContext
from processor.costs import CostLedger, charged
from processor.functions import StageFn
from processor.leases import Claim, LeaseLost
from processor.progress import ProgressReporter, Writer
from processor.runtime import Runtime

log = logging.getLogger(__name__)


class StageTimeout(LongrunError):
    code = "STAGE_TIMEOUT"

    def __init__(self, seconds: float) -> None:
        super().__init__(f"The stage ran past its limit of {seconds:g} s.")


class BudgetSpent(Exception):
    """The delivery's time budget ran out after the stage saved a cursor: continue later."""


class Segment:
    """One delivery's run of a stage body: lease kept alive, time-limited, progress written."""

    def __init__(
        self,
        runtime: Runtime,
        job: Job,
        claim: Claim,
        spec: StageSpec,
        inputs: Inputs,
        costs: CostLedger,
    ) -> None:
        assert claim.lease is not None
        self._runtime = runtime
        self._costs = costs
        self._job = job
        self._claim = claim
        self._spec = spec
        self._lease = claim.lease
        self._inputs = inputs
        self.checkpointed = False
        self.artifacts: dict[str, Artifact] = {}
        self.latest: list[Any] = []

    async def _checkpoint(self, cursor: Any) -> None:
        await self._runtime.leases.checkpoint(self._lease, cursor)
        self.checkpointed = True

    async def run(self, function: StageFn) -> Any:
        settings = self._runtime.settings
        spec = self._spec
        budget = settings.stage_time_budget_seconds
        limit = min(spec.timeout_seconds, budget)
        self._costs.check()  # a job already over its budget runs no further stage
        reporter = ProgressReporter(
            _progress_writer(self._runtime, self._claim.index, self._lease, self._costs),
            settings.progress_interval_seconds,
        )
        async with _scratch_dir() as scratch:
            context = self._context(reporter, scratch)
            self.artifacts = context.artifacts
            self.latest = context.latest
            body = asyncio.create_task(function(context))
            heartbeat = asyncio.create_task(_heartbeat(self._runtime, self._lease, body))
            deadline = asyncio.timeout(limit)
            try:
                async with deadline:
                    return await body
            except TimeoutError:
                if not deadline.expired():
                    raise  # the stage's own (a network timeout, say), not its time limit
                if budget < spec.timeout_seconds and self.checkpointed:
                    raise BudgetSpent from None
                raise StageTimeout(limit) from None
            except asyncio.CancelledError:
                if heartbeat.done() and _current_task_cancelling() == 0:
                    raise LeaseLost(self._lease.stage) from None
                raise
            finally:
                heartbeat.cancel()
                body.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await body
                await reporter.close()

    def _context(self, reporter: ProgressReporter, scratch: Path) -> StageContext:
        job, lease, store = self._job, self._lease, self._runtime.store
        stage = job.stages[self._claim.index]
        # A continuation picks up its progress; an item starts its own from zero.
        last_progress = (stage.progress, stage.message) if lease.item is None else (0.0, None)
        return StageContext(
            job_id=job.job_id,
            owner=job.owner,
            stage=lease.stage,
            input=job.input,
            outputs=self._inputs.outputs,
            attempt=lease.attempt,
            cursor=self._claim.cursor,
            scratch_dir=scratch,
            settings=self._runtime.settings,
            storage=self._runtime.storage,
            log=logging.getLogger(f"longrun.stage.{job.pipeline}"),
            _reporter=reporter,
            _read_cancel_requested=lambda: store.stop_requested(job.job_id),
            _save_cursor=self._checkpoint,
            _find_upload=lambda upload_id: store.get_upload(upload_id, job.owner),
            _costs=self._costs,
            _last_progress=last_progress,
            item_number=lease.item,
            item=self._claim.item,
            item_outputs=self._inputs.item_outputs,
        )


def _current_task_cancelling() -> int:
    task = asyncio.current_task()
    return task.cancelling() if task else 0


async def _heartbeat(runtime: Runtime, lease: Lease, body: asyncio.Task[Any]) -> None:
    """Extend the lease until cancelled; if it is lost, stop the stage body."""
    while True:
        await asyncio.sleep(runtime.settings.heartbeat_seconds)
        try:
            held = await runtime.leases.heartbeat(lease)
        except Exception:
            log.warning("heartbeat failed; will try again", exc_info=True)
            continue
        if not held:
            body.cancel()
            return


def _progress_writer(runtime: Runtime, index: int, lease: Lease, costs: CostLedger) -> Writer:
    """Progress as job writes: each a decision on the job as it is now (parallel stages and
    items write the same document), skipped while the job was written less than an interval
    ago by anyone, so all of a job's stages and items together write it about once an interval."""
    interval = timedelta(seconds=runtime.settings.progress_interval_seconds)
    # A whole stage's first report is written at once, so even a short stage shows what it
    # does; items (which may start by the hundred) always wait their turn.
    first = lease.item is None

    async def write(fraction: float, message: str | None) -> bool:
        nonlocal first
        amounts = costs.unsaved()  # money rides along: no write of its own

        def decide(job: Job | None, _runs: Mapping[str, Any]) -> Decision[bool]:
            now = utcnow()
            if job is None or job.status.terminal:
                return Decision(False)
            if job.updated_at > now - interval and not first:
                return Decision(False)
            if job.stages[index].status != StageStatus.RUNNING:
                return Decision(False)  # this delivery's end, or someone else's, came first
            job = charged(job, index, amounts)
            if lease.item is not None:
                after = transitions.item_progressed(job, index, lease.item, fraction, now)
            else:
                after = transitions.stage_progressed(job, index, fraction, message, now)
            return Decision(True, job=after)

        written = await runtime.store.decide(lease.job_id, decide)
        first = False
        if written:
            costs.saved(amounts)
        return written

    return write


@contextlib.asynccontextmanager
async def _scratch_dir() -> AsyncIterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="longrun-"))
    try:
        yield path
    finally:
        await asyncio.to_thread(shutil.rmtree, path, True)
