"""Job changes as they happen, from a Firestore listener, for Server-Sent Events.

Google's async Firestore client cannot listen; the sync client's `on_snapshot` calls back on a
thread of its own, so each snapshot is handed to the event loop through a queue.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

from google.cloud import firestore

from jobs.models import Job
from jobs.store import job_from_document


async def job_changes(
    client: firestore.Client, collection: str, job_id: str
) -> AsyncIterator[Job | None]:
    """Every version of the job document, from its current one on; None if it is deleted.
    Ends (closing the listener) when the caller stops iterating."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[Job | None] = asyncio.Queue()

    def on_snapshot(docs: list[Any], _changes: Any, _read_time: Any) -> None:
        for doc in docs:
            job = job_from_document(doc.to_dict() or {}) if doc.exists else None
            loop.call_soon_threadsafe(queue.put_nowait, job)

    watch = client.collection(collection).document(job_id).on_snapshot(on_snapshot)
    try:
        while True:
            yield await queue.get()
    finally:
        watch.unsubscribe()  # type: ignore[no-untyped-call]
