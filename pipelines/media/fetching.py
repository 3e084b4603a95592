"""The `fetch` stage: bring the recording (and its chat log) into the job's area in Storage.

Each source is checked before its bytes are trusted, again after the API did: uploads must be
the job owner's, gs:// objects must be spelled exactly and sit in a bucket the operator lists
(never longrun's own: the processor must not read for one user what belongs to another), and
are sized before they are copied, https:// downloads go through the address-checked
fetcher straight into Storage (continuing over deliveries, see processor.downloads), and media
must look like media by its first bytes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from jobs.cloud.storage import SourceTooLarge
from jobs.contract.models import Artifact
from jobs.contract.sources import SourceKind, SourceRules, check_source, parse_gs_uri
from pipelines.media.sniff import HEAD_BYTES, looks_like_text, sniff_media
from pipelines.media.spec import MediaInput
from processor.stage import AddressRules, Download, PermanentError, StageContext, trusted

CHAT_MAX_BYTES = 64 * 1024 * 1024


async def fetch(ctx: StageContext) -> dict[str, Any]:
    params = MediaInput.model_validate(ctx.input)
    limit = ctx.settings.max_source_bytes
    saved = ctx.cursor if isinstance(ctx.cursor, dict) else {}

    async def save_source(state: dict[str, Any]) -> None:
        await ctx.checkpoint({"source": state})

    source = await _bring(ctx, params.source, "source", limit, (0.0, 0.9), saved, save_source)
    chat = None
    if params.chat is not None:
        # A source already stored is kept in the cursor, so a later delivery starts at the chat.
        stored = {"stored": source.model_dump(mode="json")}

        async def save_chat(state: dict[str, Any]) -> None:
            await ctx.checkpoint({"source": stored, "chat": state})

        chat = await _bring(ctx, params.chat, "chat", CHAT_MAX_BYTES, (0.9, 1.0), saved, save_chat)
    # The stored copy is listed with the job's artifacts: a page plays the recording from it.
    ctx.artifacts[source.uri.rsplit("/", 1)[-1]] = source
    return {"source": source.model_dump(), "chat": chat.model_dump() if chat else None}


async def _bring(
    ctx: StageContext,
    source: str,
    role: str,
    max_bytes: int,
    share: tuple[float, float],
    saved: dict[str, Any],
    save: Callable[[dict[str, Any]], Awaitable[None]],
) -> Artifact:
    """Copy one source into `jobs/{id}/{role}...`, checking it on the way."""
    kind = check_source(source, SourceRules.of(ctx.settings))
    if kind == SourceKind.HTTPS:
        state = saved.get(role)
        if isinstance(state, dict) and "stored" in state:
            return Artifact.model_validate(state["stored"])
        return await _download(ctx, source, role, max_bytes, share, state, save)
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
    ctx: StageContext,
    url: str,
    role: str,
    max_bytes: int,
    share: tuple[float, float],
    cursor: Any,
    save: Callable[[dict[str, Any]], Awaitable[None]],
) -> Artifact:
    """Stream an https:// source into Storage, continuing from `cursor` if a delivery ran out."""
    low, high = share

    def report(done: int, total: int | None) -> None:
        if total:
            ctx.progress(low + (high - low) * done / total, f"{done // 1_000_000} MB of {role}")

    settings = ctx.settings
    download = Download(
        url,
        ctx.storage,
        name_for=lambda head: f"jobs/{ctx.job_id}/{role}{_check_head(head, role)}",
        save=save,
        max_bytes=max_bytes,
        chunk_bytes=settings.fetch_chunk_bytes,
        head_bytes=HEAD_BYTES,
        max_redirects=settings.fetch_max_redirects,
        rules=AddressRules.of(settings),
        verify=trusted(settings),
        progress=report,
        between_chunks=ctx.check_cancelled,
    )
    return await download.run(cursor)


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
