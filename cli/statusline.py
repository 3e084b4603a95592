"""One line saying what a command is waiting for: a live spinner in a terminal, and elsewhere (a
CI log, a pipe) the same words printed every few seconds, so a long wait never looks like a hang."""

from __future__ import annotations

import time

from rich.console import Console
from rich.status import Status

PRINT_EVERY_SECONDS = 10.0


class StatusLine:
    """Call with the current text to show it; call with None to take the line down."""

    def __init__(self, console: Console) -> None:
        self._console = console
        self._status: Status | None = None
        self._printed_at = float("-inf")

    def __call__(self, text: str | None) -> None:
        if text is None:
            if self._status is not None:
                self._status.stop()
                self._status = None
            return
        if self._console.is_terminal:
            if self._status is None:
                self._status = self._console.status(text)
                self._status.start()
            else:
                self._status.update(text)
        elif time.monotonic() - self._printed_at >= PRINT_EVERY_SECONDS:
            self._printed_at = time.monotonic()
            self._console.print(text, soft_wrap=True)  # one line, however long
