"""Where stage and item outputs live: in the run document when small, in Cloud Storage when not.

A run document holds at most 1 MiB, and a long recording's series (loudness window by window,
say) grows past that. So an output over INLINE_BYTES is written as gzipped JSON next to the
job's artifacts, `jobs/{id}/runs/{run}.json.gz`, and its run document keeps only the URI; readers
get the value either way. No recording is too long for a Firestore limit this way.
"""

from __future__ import annotations

import asyncio
import gzip
import json
from typing import Any

from jobs.cloud.storage import Storage
from jobs.cloud.store import JobStore, StoredOutput

# Outputs up to this many bytes (as Firestore counts them) stay in the run document: the
# common case costs no extra round trip, and a job reads few of them.
INLINE_BYTES = 64 * 1024
# Outputs loaded at once: enough to hide Cloud Storage's latency, few enough to bound memory.
_LOAD_CONCURRENCY = 16


def firestore_size(value: Any) -> int:
    """The bytes Firestore counts for a value (its documented storage-size rules)."""
    total, pending = 0, [value]
    while pending:  # a loop, not recursion: outputs may nest deeply
        item = pending.pop()
        if isinstance(item, str):
            total += len(item.encode()) + 1
        elif isinstance(item, bytes):
            total += len(item)
        elif isinstance(item, dict):
            total += sum(len(str(key).encode()) + 1 for key in item)
            pending.extend(item.values())
        elif isinstance(item, list | tuple):
            pending.extend(item)
        else:  # numbers and timestamps take 8 bytes; booleans and null 1
            total += 1 if item is None or isinstance(item, bool) else 8
    return total


async def stored(storage: Storage, job_id: str, run: str, output: Any) -> StoredOutput:
    """The output as its run document should hold it: itself, or the URI it was written to."""
    if firestore_size(output) <= INLINE_BYTES:
        return StoredOutput(output)
    data = gzip.compress(json.dumps(output, separators=(",", ":")).encode(), compresslevel=6)
    name = f"jobs/{job_id}/runs/{run}.json.gz"
    artifact = await asyncio.to_thread(storage.upload_bytes, data, name, "application/gzip")
    return StoredOutput(None, artifact.uri)


async def load(store: JobStore, storage: Storage, job_id: str, runs: list[str]) -> dict[str, Any]:
    """The outputs of the named runs that have one, by run name, wherever they are kept."""
    found = await store.stored_outputs(job_id, runs)
    gate = asyncio.Semaphore(_LOAD_CONCURRENCY)

    async def value(output: StoredOutput) -> Any:
        if output.uri is None:
            return output.value
        async with gate:
            data = await asyncio.to_thread(storage.read_bytes, output.uri)
        return json.loads(gzip.decompress(data))

    values = await asyncio.gather(*(value(output) for output in found.values()))
    return dict(zip(found.keys(), values, strict=True))
