"""Coalesced progress writes: a stage may report as often as it likes, Firestore sees at most one
write per interval per job (about its sustained rate for one document), and never waits longer
than that interval to see the latest value.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

# Writes one progress report; False if it was not written (too soon after another write of
# the job), and the reporter tries again an interval later unless a newer report came.
Writer = Callable[[float, str | None], Awaitable[bool]]


class ProgressReporter:
    """Takes `report(fraction, message)` calls from a stage and writes the latest one lazily."""

    def __init__(self, write: Writer, interval_seconds: float) -> None:
        self._write = write
        self._interval = interval_seconds
        self._loop = asyncio.get_running_loop()
        self._pending: tuple[float, str | None] | None = None
        self._last_write = float("-inf")
        self._timer: asyncio.Task[None] | None = None
        self._writes: set[asyncio.Task[None]] = set()
        self._scheduled = False
        self._closed = False
        self.writes = 0

    def report(self, fraction: float, message: str | None = None) -> None:
        """Record progress; safe to call from the event loop or from a worker thread."""
        self._pending = (fraction, message)
        if self._scheduled or self._closed:
            return
        self._scheduled = True
        if _on_loop(self._loop):
            self._arm_timer()
        else:
            self._loop.call_soon_threadsafe(self._arm_timer)

    def _arm_timer(self) -> None:
        if self._closed:
            return
        delay = max(0.0, self._last_write + self._interval - time.monotonic())
        self._timer = asyncio.create_task(self._write_after(delay))

    async def _write_after(self, delay: float) -> None:
        await asyncio.sleep(delay)
        self._scheduled = False
        pending, self._pending = self._pending, None
        if pending is None:
            return
        self._last_write = time.monotonic()
        self.writes += 1
        task = asyncio.create_task(self._send(*pending))
        self._writes.add(task)
        task.add_done_callback(self._writes.discard)

    async def _send(self, fraction: float, message: str | None) -> None:
        try:
            written = await self._write(fraction, message)
        except Exception:
            # A lost progress write is not worth failing the stage for; the next one carries on.
            log.warning("progress write failed", exc_info=True)
            return
        if not written and self._pending is None:
            self.report(fraction, message)  # deferred: the next interval carries it

    async def close(self) -> None:
        """Stop writing, and let writes already sent land first: the runner's record of the
        stage's end comes after them, so none of them can overwrite it."""
        self._closed = True
        if self._timer is not None and not self._timer.done():
            self._timer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._timer
        if self._writes:
            await asyncio.gather(*self._writes)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
