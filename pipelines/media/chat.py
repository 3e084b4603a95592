"""Chat activity: how many messages a second, window by window, and when it spiked.

A chat log is JSON lines (`{"timestamp_seconds": 12.5, "user": "a", "text": "..."}`) or CSV
with a `timestamp_seconds,user,text` header; the first non-blank line tells which. The file is
read a line at a time; a line that cannot be placed on the recording's time line is counted
and skipped, since one bad line should not cost the whole analysis. A file that breaks the
parsers (an endless line or field, nesting too deep for json) is refused as INVALID_CHAT, with
the line where it broke: it would break the same way on every retry.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import numpy.typing as npt

from pipelines.media.audio import runs
from pipelines.media.models import ChatAnalysis, Span
from pipelines.media.probe import grid_cells
from processor.stage import PermanentError

INVALID = "INVALID_CHAT"
TIMESTAMP = "timestamp_seconds"
# Chat messages are short (Twitch allows 500 characters): a longer line is not chat, and the
# cap keeps what is read at once small.
MAX_LINE_CHARS = 64 * 1024
# Messages may trail the recording a little (clocks differ); later than this, they are bad.
LATE_SLACK_SECONDS = 5.0
# A spike is a window this many robust standard deviations above the median rate, ...
SPIKE_SIGMAS = 5.0
# ... at least this many times the median rate, and with at least this many messages.
SPIKE_MIN_RATIO = 3.0
SPIKE_MIN_MESSAGES = 5


class _Tally:
    """Messages counted into windows, and the lines that could not be."""

    def __init__(self, duration_seconds: float, window_seconds: float) -> None:
        self.window_seconds = window_seconds
        self.latest = duration_seconds + LATE_SLACK_SECONDS
        self.counts = np.zeros(grid_cells(duration_seconds, window_seconds), np.int64)
        self.messages = 0
        self.bad_lines = 0

    def add(self, timestamp: object) -> None:
        seconds = _seconds(timestamp)
        if seconds is None or seconds > self.latest:
            self.bad_lines += 1
            return
        window = min(int(seconds // self.window_seconds), self.counts.size - 1)
        self.counts[window] += 1
        self.messages += 1


def _seconds(value: object) -> float | None:
    """A timestamp as seconds, or None if it is missing, not a number, negative or infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):  # JSON integers may be too big for a float
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def analyse_chat(
    path: Path, *, duration_seconds: float, window_seconds: float = 5.0
) -> ChatAnalysis:
    """Count a chat log's messages per window and find the windows where the chat spiked."""
    tally = _Tally(duration_seconds, window_seconds)
    with path.open(encoding="utf-8-sig", errors="replace", newline="") as file:
        for timestamp in _timestamps(_Lines(file)):
            tally.add(timestamp)
    if tally.messages == 0 and tally.bad_lines > 0:
        raise PermanentError(
            f"The chat log has no usable line ({tally.bad_lines} unreadable).",
            code=INVALID,
        )
    rates = tally.counts / window_seconds
    return ChatAnalysis(
        messages=tally.messages,
        bad_lines=tally.bad_lines,
        window_seconds=window_seconds,
        rate_per_window=[round(float(rate), 3) for rate in rates],
        spikes=find_spikes(tally.counts, window_seconds, duration_seconds),
    )


def invalid_chat(what: str, line: int) -> PermanentError:
    return PermanentError(f"The chat log cannot be read: {what} (line {line}).", code=INVALID)


class _Lines:
    """The file's non-blank lines, numbered, none longer than MAX_LINE_CHARS: a file that is
    one endless line must not be read into memory whole."""

    def __init__(self, file: TextIO) -> None:
        self.file = file
        self.number = 0

    def __iter__(self) -> Iterator[str]:
        while line := self.file.readline(MAX_LINE_CHARS + 1):
            self.number += 1
            if len(line.rstrip("\r\n")) > MAX_LINE_CHARS:
                raise invalid_chat(f"a line is over {MAX_LINE_CHARS} characters", self.number)
            if line.strip():
                yield line


def _timestamps(lines: _Lines) -> Iterator[object]:
    """Each non-blank line's timestamp field, as found (None when the line has none)."""
    rows = iter(lines)
    first = next(rows, None)
    if first is None:
        return
    header = next(_csv_rows([first], lines))
    if TIMESTAMP in (field.strip().lower() for field in header):
        yield from _csv_timestamps(header, rows, lines)
    else:
        yield _json_timestamp(first, lines.number)
        yield from (_json_timestamp(line, lines.number) for line in rows)


def _csv_rows(source: Iterable[str], lines: _Lines) -> Iterator[list[str]]:
    """CSV rows; a quoted field may span lines, so a broken one is refused where it ends."""
    try:
        yield from csv.reader(source)
    except csv.Error as error:  # e.g. a field over csv's limit (128 KiB), or a NUL byte
        raise invalid_chat(str(error), lines.number) from None


def _csv_timestamps(header: list[str], rows: Iterable[str], lines: _Lines) -> Iterator[object]:
    column = [field.strip().lower() for field in header].index(TIMESTAMP)
    for row in _csv_rows(rows, lines):
        yield row[column] if len(row) > column else None


def _json_timestamp(line: str, number: int) -> object:
    try:
        message: Any = json.loads(line)
    except ValueError:
        return None
    except RecursionError:  # json recurses once per level of nesting
        raise invalid_chat("a line nests too deeply", number) from None
    return message.get(TIMESTAMP) if isinstance(message, dict) else None


def rate_norm(rates: npt.NDArray[np.float64], window_seconds: float) -> tuple[float, float]:
    """The chat's usual rate (the median) and how far a window strays from it by chance: the
    rates' robust spread, but never less than counting noise (n messages vary by about sqrt(n))."""
    median = float(np.median(rates)) if rates.size else 0.0
    spread = 1.4826 * float(np.median(np.abs(rates - median))) if rates.size else 0.0
    noise = math.sqrt(max(median * window_seconds, 1.0)) / window_seconds
    return median, max(spread, noise)


def find_spikes(
    counts: npt.NDArray[np.int64], window_seconds: float, duration_seconds: float
) -> list[Span]:
    """Windows far busier than the chat's usual pace, merged into spans."""
    rates = counts / window_seconds
    median, deviation = rate_norm(rates, window_seconds)
    threshold = max(
        median + SPIKE_SIGMAS * deviation,
        SPIKE_MIN_RATIO * median,
        SPIKE_MIN_MESSAGES / window_seconds,
    )
    return [
        Span(start=first * window_seconds, end=min(last * window_seconds, duration_seconds))
        for first, last in runs(rates >= threshold)
    ]
