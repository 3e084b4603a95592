"""What a stage function is given: its input, earlier outputs, and ways to report, stop, keep a
cursor, read sources and save artifacts. Stages never touch Firestore or Pub/Sub themselves."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from jobs.cloud.storage import Storage
from jobs.contract.errors import JobCancelled
from jobs.contract.models import MAX_LATEST_ENTRIES, MAX_LATEST_ENTRY_BYTES, Artifact
from jobs.contract.settings import Settings
from jobs.contract.uploads import Upload
from processor.costs import CostLedger
from processor.outputs import firestore_size
from processor.progress import ProgressReporter

T = TypeVar("T")

# How often check_cancelled() may read Firestore; between reads it answers from memory.
CANCEL_CHECK_SECONDS = 1.0


@dataclass(frozen=True)
class Skipped:
    """Return this from a stage that has nothing to do for this job (it shows as `skipped`)."""

    reason: str


@dataclass(frozen=True)
class Items:
    """Return this from a stage whose spec declares a `fan_out`: its work, split into items
    (one small JSON-able description each, say a time span). Each runs as its own message, on
    any processor instance, then the stage's reduce gets their outputs."""

    items: list[Any]


@dataclass(frozen=True)
class Inputs:
    """What a delivery reads: the outputs of the stages its stage needs, by stage name, and for
    a reduce its items' outputs in order (None for an item that failed, under a "gap" policy)."""

    outputs: dict[str, Any]
    item_outputs: list[Any] | None = None


@dataclass
class StageContext:
    """Everything a stage needs from longrun."""

    job_id: str
    owner: str
    stage: str
    input: dict[str, Any]
    # The outputs of the stages this one needs (directly or through others), by stage name.
    outputs: dict[str, Any]
    attempt: int
    cursor: Any
    scratch_dir: Path
    settings: Settings
    storage: Storage
    log: (
        logging.Logger
    )  # a plain logger: `extra` fields reach the JSON line (an adapter drops them)
    _reporter: ProgressReporter
    _read_cancel_requested: Callable[[], Awaitable[bool]]
    _save_cursor: Callable[[Any], Awaitable[None]]
    _find_upload: Callable[[str], Awaitable[Upload | None]]
    _costs: CostLedger
    artifacts: dict[str, Artifact] = field(default_factory=dict)
    # Entries to show in the job's `latest` when this delivery succeeds (`show_latest`).
    latest: list[Any] = field(default_factory=list)
    # In an item of a fanned-out stage: its number and its description (from `Items`).
    item_number: int | None = None
    item: Any = None
    # In a fanned-out stage's reduce: each item's output, in order; None where one failed.
    item_outputs: list[Any] | None = None
    _last_cancel_check: float = field(default=float("-inf"))
    _last_progress: tuple[float, str | None] = (0.0, None)

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report this stage's progress (0..1) and a short message; cheap, call it freely,
        also from a worker thread. Raises BudgetExceeded once the job is over its budget."""
        self._last_progress = (fraction, message)
        self._reporter.report(fraction, message)
        self._costs.check()

    def add_cost(self, usd: float, what: str) -> None:
        """Record money this stage spent on `what` (a paid API call, say; its compute time is
        counted for it). The job document shows it with the next progress write. Raises
        BudgetExceeded once the job is over its budget; safe to call from a worker thread."""
        self._costs.add(usd, what)
        self._reporter.report(*self._last_progress)
        self._costs.check()

    def show_latest(self, entries: list[Any]) -> None:
        """Show `entries` (small JSON-able values: a transcript's lines, say) in the job
        document's `latest`, under this stage, newest last, once this delivery succeeds: in
        the write that records its end, so it costs no write of its own. The job keeps the
        stage's newest MAX_LATEST_ENTRIES; each entry is at most MAX_LATEST_ENTRY_BYTES."""
        for entry in entries:
            size = firestore_size(entry)
            if size > MAX_LATEST_ENTRY_BYTES:
                raise ValueError(f"an entry to show is {size} bytes, over {MAX_LATEST_ENTRY_BYTES}")
        self.latest[:] = [*self.latest, *entries][-MAX_LATEST_ENTRIES:]

    async def check_cancelled(self) -> None:
        """Raise JobCancelled once the user has cancelled, or the job ended otherwise (another
        stage failed, say); it reads Firestore at most once a second. Raises BudgetExceeded
        once the job is over its budget."""
        self._costs.check()
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_CHECK_SECONDS:
            return
        self._last_cancel_check = now
        if await self._read_cancel_requested():
            raise JobCancelled("The job was cancelled.")

    async def checkpoint(self, state: Any) -> None:
        """Save a cursor (JSON-able); a later delivery of this stage starts with it in `cursor`."""
        await self._save_cursor(state)
        self.cursor = state

    async def run_blocking(
        self,
        function: Callable[..., T],
        /,
        *args: Any,
        message: str = "",
        low: float = 0.0,
        high: float = 1.0,
        **kwargs: Any,
    ) -> T:
        """Run CPU-bound `function(*args, progress=..., **kwargs)` in a worker thread.

        Its `progress(fraction)` calls are reported as this stage's progress (scaled into
        low..high) and are where it stops: once the job is cancelled, or this stage is stopped
        (time limit, shutdown), the next call raises, so the thread does not run on unseen.
        """
        stop = threading.Event()

        def progress(fraction: float) -> None:
            if stop.is_set():
                raise JobCancelled("The stage was stopped.")
            self.progress(low + (high - low) * fraction, f"{message} {fraction:.0%}".strip())

        work = asyncio.create_task(asyncio.to_thread(function, *args, progress=progress, **kwargs))
        try:
            while not work.done():
                await asyncio.wait({work}, timeout=CANCEL_CHECK_SECONDS)
                if not work.done():
                    await self.check_cancelled()
            return work.result()
        finally:
            stop.set()
            if not work.done():
                with contextlib.suppress(BaseException):
                    await asyncio.shield(work)

    async def find_upload(self, upload_id: str) -> Upload | None:
        """The job owner's upload with this id, if there is one."""
        return await self._find_upload(upload_id)

    async def download(self, uri: str, filename: str, max_bytes: int | None = None) -> Path:
        """Copy a gs:// object into this stage's scratch directory."""
        path = self.scratch_dir / filename
        await asyncio.to_thread(self.storage.download, uri, path, max_bytes)
        return path

    async def save_artifact(self, name: str, data: bytes | Path, content_type: str) -> Artifact:
        """Store a file or bytes as the job's artifact `name` (listed in the job document once
        this delivery succeeds)."""
        object_name = f"jobs/{self.job_id}/{name}"
        if isinstance(data, Path):
            upload = self.storage.upload_file
            artifact = await asyncio.to_thread(upload, data, object_name, content_type)
        else:
            artifact = await asyncio.to_thread(
                self.storage.upload_bytes, data, object_name, content_type
            )
        self.artifacts[name] = artifact
        return artifact
