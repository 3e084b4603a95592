"""Job changes as they happen, from a Firestore listener, for Server-Sent Events.

Google's async Firestore client cannot listen; the sync client's `on_snapshot` calls back on a
thread of its own, so each snapshot is handed to the event loop through a queue. A listener whose
stream breaks for good stops calling back without a word, so when it has been quiet for a while
the document is also read directly; only versions newer than the last one sent are passed on.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.cloud import firestore

from jobs.cloud.store import JobStore, job_from_document
from jobs.contract.models import Job

QUIET_SECONDS = 10.0


async def job_changes(
    listener: firestore.Client,
    store: JobStore,
    job_id: str,
    *,
    quiet_seconds: float = QUIET_SECONDS,
) -> AsyncIterator[Job | None]:
    """Every version of the job document, from its current one on; None if it is deleted.
    Ends (closing the listener) when the caller stops iterating."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Job | None] = asyncio.Queue()

    def on_snapshot(docs: list[Any], _changes: Any, _read_time: Any) -> None:
        for doc in docs:
            job = job_from_document(doc.to_dict() or {}) if doc.exists else None
            loop.call_soon_threadsafe(queue.put_nowait, job)

    watch = listener.collection(store.jobs.id).document(job_id).on_snapshot(on_snapshot)
    last_version = -1
    try:
        while True:
            try:
                job = await asyncio.wait_for(queue.get(), timeout=quiet_seconds)
            except TimeoutError:
                job = await store.get(job_id)
            if job is None:
                yield None
            elif job.version > last_version:
                last_version = job.version
                yield job
    finally:
        watch.unsubscribe()  # type: ignore[no-untyped-call]
