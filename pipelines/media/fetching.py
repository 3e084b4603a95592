"""The `fetch` stage: bring the recording (and its chat log) into the job's area in Storage.

Each source is checked before its bytes are trusted, again after the API did: uploads must be
the job owner's, gs:// objects must be spelled exactly and sit in a bucket the operator lists
(never longrun's own: the processor must not read for one user what belongs to another), and
are sized before they are copied, https:// downloads go through the address-checked
fetcher, and media must look like media by its first bytes.
"""

from __future__ import annotations

import asyncio
from typing import Any

from jobs.cloud.storage import SourceTooLarge
from jobs.contract.models import Artifact
from jobs.contract.sources import SourceKind, SourceRules, check_source, parse_gs_uri
from pipelines.media.sniff import HEAD_BYTES, looks_like_text, sniff_media
from pipelines.media.spec import MediaInput
from processor.stage import PermanentError, StageContext, fetch_to_file

CHAT_MAX_BYTES = 64 * 1024 * 1024


async def fetch(ctx: StageContext) -> dict[str, Any]:
    params = MediaInput.model_validate(ctx.input)
    limit = ctx.settings.max_source_bytes
    source = await _bring(ctx, params.source, "source", limit, share=(0.0, 0.9))
    chat = None
    if params.chat is not None:
        chat = await _bring(ctx, params.chat, "chat", CHAT_MAX_BYTES, share=(0.9, 1.0))
    return {"source": source.model_dump(), "chat": chat.model_dump() if chat else None}


async def _bring(
    ctx: StageContext, source: str, role: str, max_bytes: int, share: tuple[float, float]
) -> Artifact:
    """Copy one source into `jobs/{id}/{role}...`, checking it on the way."""
    kind = check_source(source, SourceRules.of(ctx.settings))
    if kind == SourceKind.HTTPS:
        return await _download(ctx, source, role, max_bytes, share)
    uri = await _object_uri(ctx, source, kind)
    found = await asyncio.to_thread(ctx.storage.stat, uri)
    if found is None:
        raise PermanentError(f"There is no object at {uri}.", code="SOURCE_NOT_FOUND")
    if found.size_bytes > max_bytes:
        raise SourceTooLarge(f"The {role} is {found.size_bytes} bytes; the limit is {max_bytes}.")
    head = await asyncio.to_thread(ctx.storage.head, uri, HEAD_BYTES) if found.size_bytes else b""
    extension = _check_head(head, role)
    name = f"jobs/{ctx.job_id}/{role}{extension}"
    copied = await asyncio.to_thread(ctx.storage.copy, uri, name)
    ctx.progress(share[1], f"{role} ready")
    return copied


async def _object_uri(ctx: StageContext, source: str, kind: SourceKind) -> str:
    if kind == SourceKind.UPLOAD:
        upload = await ctx.find_upload(source)
        if upload is None:
            raise PermanentError(f"There is no upload {source!r}.", code="UPLOAD_NOT_FOUND")
        return upload.uri
    return parse_gs_uri(source).uri


async def _download(
    ctx: StageContext, url: str, role: str, max_bytes: int, share: tuple[float, float]
) -> Artifact:
    low, high = share

    def report(done: int, total: int | None) -> None:
        if total:
            ctx.progress(low + (high - low) * done / total, f"{done // 1_000_000} MB of {role}")

    path = ctx.scratch_dir / role
    fetched = await fetch_to_file(
        url,
        path,
        max_bytes=max_bytes,
        max_redirects=ctx.settings.fetch_max_redirects,
        progress=report,
        between_chunks=ctx.check_cancelled,
    )
    with path.open("rb") as file:
        head = file.read(HEAD_BYTES)
    extension = _check_head(head, role)
    name = f"jobs/{ctx.job_id}/{role}{extension}"
    upload = ctx.storage.upload_file
    return await asyncio.to_thread(upload, path, name, fetched.content_type)


def _check_head(head: bytes, role: str) -> str:
    """The file extension the content deserves; refuse what is not what its role needs."""
    if role == "chat":
        if not looks_like_text(head):
            raise PermanentError("The chat log is not a text file.", code="INVALID_CHAT")
        return ".txt"
    sniffed = sniff_media(head)
    if sniffed is None:
        what = "empty" if not head else "not audio or video"
        raise PermanentError(f"The source is {what}.", code="UNSUPPORTED_MEDIA")
    return sniffed.extension
