"""What a stage function is given: its input, earlier outputs, and ways to report and stop."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.errors import JobCancelled
from processor.progress import ProgressReporter

# How often check_cancelled() may read Firestore; between reads it answers from memory.
CANCEL_CHECK_SECONDS = 1.0


@dataclass
class StageContext:
    """Everything a stage needs from longrun; stages never touch Firestore or Pub/Sub themselves."""

    job_id: str
    stage: str
    input: dict[str, Any]
    outputs: dict[str, Any]
    attempt: int
    cursor: Any
    scratch_dir: Path
    log: logging.LoggerAdapter[logging.Logger]
    _reporter: ProgressReporter
    _read_cancel_requested: Callable[[], Awaitable[bool]]
    _save_cursor: Callable[[Any], Awaitable[None]]
    _last_cancel_check: float = field(default=float("-inf"))

    def progress(self, fraction: float, message: str | None = None) -> None:
        """Report this stage's progress (0..1) and a short message; cheap, call it freely."""
        self._reporter.report(fraction, message)

    async def check_cancelled(self) -> None:
        """Raise JobCancelled once the user has cancelled; reads Firestore at most once a second."""
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_CHECK_SECONDS:
            return
        self._last_cancel_check = now
        if await self._read_cancel_requested():
            raise JobCancelled("The job was cancelled.")

    async def checkpoint(self, state: Any) -> None:
        """Save a cursor (JSON-able); a later attempt of this stage starts with it in `cursor`."""
        await self._save_cursor(state)
        self.cursor = state
