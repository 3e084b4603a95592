"""Sending a local file to longrun: ask the API for an upload, then PUT the bytes to Storage."""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

# Types the standard library does not know, or gets wrong for media (".ts" is not a translation).
_TYPES = {".jsonl": "application/x-ndjson", ".ndjson": "application/x-ndjson", ".ts": "video/mp2t"}
# Resumable sessions take the file in pieces that are multiples of 256 KiB.
_PIECE = 32 * 256 * 1024


def upload_file(
    api: httpx.Client,
    path: Path,
    content_type: str | None = None,
    sent_bytes: Callable[[int], None] = lambda _sent: None,
) -> str:
    """Upload `path` through the API client `api` and return its upload id (a job's source);
    `sent_bytes` hears how many bytes have gone after each piece."""
    content_type = (
        content_type
        or _TYPES.get(path.suffix.lower())
        or mimetypes.guess_type(path.name)[0]
        or "application/octet-stream"
    )
    size = path.stat().st_size
    ticket: dict[str, Any] = (
        api.post(
            "/v1/uploads",
            json={"filename": path.name, "content_type": content_type, "size_bytes": size},
        )
        .raise_for_status()
        .json()
    )
    with path.open("rb") as file, httpx.Client(timeout=300) as client:
        sent = 0
        while sent < size:
            piece = file.read(_PIECE)
            last = sent + len(piece) - 1
            headers = {**ticket["headers"], "Content-Range": f"bytes {sent}-{last}/{size}"}
            response = client.put(ticket["upload_url"], content=piece, headers=headers)
            if response.status_code not in (200, 201, 308):
                response.raise_for_status()
            sent += len(piece)
            sent_bytes(sent)
    upload_id: str = ticket["upload_id"]
    return upload_id
