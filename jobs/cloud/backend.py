"""Deadlines on calls to Firestore and Pub/Sub, and what an outage becomes: a 503 to retry.

Google's clients retry for a minute or more by default, so a request to a paused or unreachable
backend would hang that long. Every call on the API's request path takes `options()` (the
client's own `retry=` and `timeout=`), and `unavailable()` turns the call running out of time
into `BACKEND_UNAVAILABLE` with a `Retry-After`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from google.api_core import exceptions, retry_async

from jobs.contract.errors import Unavailable

log = logging.getLogger(__name__)

BACKEND_UNAVAILABLE = "BACKEND_UNAVAILABLE"
# What a call bounded by a deadline raises when the backend does not answer in time.
OUTAGE: tuple[type[BaseException], ...] = (
    exceptions.DeadlineExceeded,
    exceptions.RetryError,
    exceptions.ServiceUnavailable,
    TimeoutError,
)


@dataclass(frozen=True)
class Deadline:
    """How long one call (its retries included) may wait for Firestore or Pub/Sub."""

    seconds: float

    def options(self) -> dict[str, Any]:
        """`retry=` and `timeout=` for a Google client call: transient errors are retried, but
        never past the deadline."""
        retry = retry_async.AsyncRetry(
            predicate=retry_async.if_transient_error,
            initial=0.1,
            maximum=1.0,
            timeout=self.seconds,
        )
        return {"retry": retry, "timeout": self.seconds}

    @property
    def retry_after_seconds(self) -> int:
        return max(1, math.ceil(self.seconds))

    @contextmanager
    def unavailable(self) -> Iterator[None]:
        """Turn a backend that did not answer in time into a 503 the client may retry."""
        try:
            yield
        except OUTAGE:
            log.warning("a backend call ran out of time", exc_info=True)
            raise Unavailable(
                "The service's database or queue is not answering; try again shortly.",
                code=BACKEND_UNAVAILABLE,
                retry_after_seconds=self.retry_after_seconds,
            ) from None
