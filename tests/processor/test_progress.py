"""Progress reports are coalesced: many calls, few writes, and the latest value always lands."""

from __future__ import annotations

import asyncio
import threading

from processor.progress import ProgressReporter


async def test_a_burst_of_reports_becomes_one_write_now_and_one_with_the_latest_value() -> None:
    written: list[tuple[float, str | None]] = []
    first_written = asyncio.Event()

    async def write(fraction: float, message: str | None) -> bool:
        written.append((fraction, message))
        first_written.set()
        return True

    reporter = ProgressReporter(write, interval_seconds=0.2)
    reporter.report(0.0, "start")
    await first_written.wait()
    for i in range(1, 10_001):
        reporter.report(i / 10_000, f"{i}")
    await asyncio.sleep(0.5)
    await reporter.close()

    assert written == [(0.0, "start"), (1.0, "10000")]


async def test_reports_from_a_worker_thread_are_written() -> None:
    written: list[float] = []

    async def write(fraction: float, _message: str | None) -> bool:
        written.append(fraction)
        return True

    reporter = ProgressReporter(write, interval_seconds=0.05)
    worker = threading.Thread(target=lambda: [reporter.report(i / 100) for i in range(101)])
    worker.start()
    await asyncio.to_thread(worker.join)
    await asyncio.sleep(0.3)
    await reporter.close()

    assert written
    assert written[-1] == 1.0


async def test_close_drops_a_pending_report_but_waits_for_a_write_in_flight() -> None:
    started, release = asyncio.Event(), asyncio.Event()
    finished: list[float] = []

    async def slow_write(fraction: float, _message: str | None) -> None:
        started.set()
        await release.wait()
        finished.append(fraction)

    reporter = ProgressReporter(slow_write, interval_seconds=10)
    reporter.report(0.1)
    await started.wait()
    reporter.report(0.2)  # would be written in 10 s; close() drops it
    closing = asyncio.create_task(reporter.close())
    await asyncio.sleep(0.05)
    assert not closing.done(), "close waits for the write already sent"
    release.set()
    await closing

    assert finished == [0.1]


async def test_a_deferred_write_is_tried_again_with_the_latest_value() -> None:
    attempts: list[float] = []

    async def write(fraction: float, _message: str | None) -> bool:
        attempts.append(fraction)
        return len(attempts) > 1  # the first is deferred (the job was written just before)

    reporter = ProgressReporter(write, interval_seconds=0.05)
    reporter.report(0.1)
    await asyncio.sleep(0.2)
    await reporter.close()

    assert attempts == [0.1, 0.1]
