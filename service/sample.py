"""The demo recording as uploads of the caller's, for the page's "use the sample" choice.

It is generated once per bucket (a few seconds of PyAV encoding) and then copied server-side,
so each caller gets uploads of their own, exactly as if they had sent the files.
"""

from __future__ import annotations

import asyncio
import tempfile
from datetime import timedelta
from pathlib import Path

from jobs.cloud.storage import Storage
from jobs.cloud.store import JobStore
from jobs.contract.models import utcnow
from jobs.contract.settings import Settings
from jobs.contract.uploads import Upload
from samples.demo import write_demo

_OBJECTS = {
    "source": ("samples/demo-stream.mp4", "video/mp4"),
    "chat": ("samples/demo-chat.jsonl", "application/x-ndjson"),
}


def _ensure_sample(storage: Storage) -> None:
    if all(storage.stat(storage.uri(name)) for name, _ in _OBJECTS.values()):
        return
    with tempfile.TemporaryDirectory(prefix="longrun-sample-") as directory:
        files = dict(zip(_OBJECTS, write_demo(Path(directory)), strict=True))
        for role, (name, content_type) in _OBJECTS.items():
            storage.upload_file(files[role], name, content_type)


async def sample_uploads(
    store: JobStore, storage: Storage, settings: Settings, owner: str, lock: asyncio.Lock
) -> dict[str, str]:
    """Uploads of the demo video and chat log for `owner`: the input of a media job."""
    async with lock:  # one generation at a time, however many callers ask at once
        await asyncio.to_thread(_ensure_sample, storage)
    job_input: dict[str, str] = {}
    for role, (name, content_type) in _OBJECTS.items():
        upload_id = store.new_job_id()
        filename = Path(name).name
        copy = await asyncio.to_thread(
            storage.copy, storage.uri(name), f"uploads/{upload_id}/{filename}"
        )
        now = utcnow()
        await store.create_upload(
            Upload(
                upload_id=upload_id,
                owner=owner,
                filename=filename,
                content_type=content_type,
                size_bytes=copy.size_bytes,
                uri=copy.uri,
                created_at=now,
                expire_at=now + timedelta(days=settings.job_ttl_days),
            )
        )
        job_input[role] = upload_id
    return job_input
