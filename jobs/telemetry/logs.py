"""JSON log lines in Cloud Logging's structured format, carrying their job and stage."""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

from jobs.telemetry import tracing

_context: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "log_context", default=None
)

# Attributes every LogRecord has; anything else passed through `extra=` becomes a JSON field.
_RECORD_ATTRIBUTES = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
# Keys Cloud Logging gives a meaning to: only the formatter itself writes them.
_SPECIAL_PREFIX = "logging.googleapis.com/"


@contextlib.contextmanager
def log_context(**fields: str) -> Iterator[None]:
    """Add fields (job_id, stage, ...) to every log line written inside the block."""
    token = _context.set({**(_context.get() or {}), **fields})
    try:
        yield
    finally:
        _context.reset(token)


class CloudLoggingFormatter(logging.Formatter):
    """One JSON object per line: `severity`, `message`, the trace, the bound context and extras.

    The fields Cloud Logging reads (`severity`, `message`, `logging.googleapis.com/*`) are written
    last and only by this formatter, so no context field or `extra=` key can change them; values
    go through `json.dumps`, so no user-supplied string can break a line in two.
    """

    def __init__(self, project_id: str) -> None:
        super().__init__()
        self._project_id = project_id

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = dict(_context.get() or {})
        entry.update(
            {k: v for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES and k[0] != "_"}
        )
        entry = {k: v for k, v in entry.items() if not str(k).startswith(_SPECIAL_PREFIX)}
        if record.exc_info:
            # Stack traces go to the log for operators; they never reach a job document or a client.
            entry["stack_trace"] = self.formatException(record.exc_info)
        entry.update(
            severity=record.levelname,
            message=record.getMessage(),
            logger=record.name,
            time=datetime.fromtimestamp(record.created, UTC).isoformat(),
        )
        entry.update(tracing.log_fields(self._project_id))
        return json.dumps(entry, default=str)


def configure_logging(level: str = "INFO", project_id: str = "longrun-local") -> None:
    """Send every logger's records to stdout as JSON lines (Cloud Run forwards stdout)."""
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(CloudLoggingFormatter(project_id))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).handlers[:] = []
        logging.getLogger(name).propagate = True
