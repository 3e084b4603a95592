"""An https:// source copied into Cloud Storage a piece at a time, over as many deliveries as it
takes.

The body streams from the source straight into a resumable upload session (Cloud Run's disk is
its memory, so nothing goes to disk, and memory holds about two pieces whatever the source's
size). Once pieces are committed a cursor is saved: the session's URL, the offset and the
source's validators. A later delivery asks the session how much it holds and asks the source for
the rest with `Range` and `If-Range`. A server that sends the whole file again, or a source
whose validators changed, means starting over from zero with a new session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import ssl
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import httpx

from jobs.cloud.storage import Committed, SourceTooLarge, Storage
from jobs.contract.errors import PermanentError, TransientError
from jobs.contract.models import Artifact
from processor.fetch import AddressRules, new_client, open_source

log = logging.getLogger(__name__)

# The least time between two saved cursors: the run document takes about one write a second,
# heartbeats included, and the session itself knows what it holds, so a cursor may lag.
CHECKPOINT_SECONDS = 2.0
# Starting over this often means the download cannot get ahead (a server that never serves
# ranges, a file that keeps changing): fail instead of fetching it forever.
MAX_RESTARTS = 3
# How much is read from the source at a time; pieces are gathered to the chunk size.
_READ_BYTES = 256 * 1024
_CONTENT_RANGE = re.compile(r"bytes (\d+)-(\d+)/(\d+|\*)")


async def _nothing() -> None:
    return None


@dataclass(frozen=True)
class Validators:
    """What tells the file first fetched from another one later found at the same URL."""

    etag: str | None = None
    last_modified: str | None = None
    length: int | None = None  # the whole file's size, if the server said

    @classmethod
    def of(cls, response: httpx.Response) -> Validators:
        headers = response.headers
        if headers.get("content-encoding", "identity").lower() != "identity":
            return cls()  # ranges count the encoded bytes, not the ones stored: no resuming
        etag = headers.get("etag")
        strong = etag if etag and not etag.startswith("W/") else None  # If-Range needs strong
        return cls(strong, headers.get("last-modified"), _whole_length(response))

    @property
    def if_range(self) -> str | None:
        return self.etag or self.last_modified

    def change_to(self, seen: Validators) -> str | None:
        """What differs between this file and `seen`, or None if nothing tells them apart."""
        for name in ("etag", "last_modified", "length"):
            before, now = getattr(self, name), getattr(seen, name)
            if before is not None and now is not None and before != now:
                return f"{name} {before} became {now}"
        return None


@dataclass(frozen=True)
class Cursor:
    """What a later delivery needs to continue: where the bytes go, and the file they are."""

    session: str  # the resumable upload session's URL
    object_name: str
    content_type: str
    offset: int  # bytes the session held when this was saved (the session's own count wins)
    source: Validators
    restarts: int = 0

    def dump(self) -> dict[str, Any]:
        return {**asdict(self), "source": asdict(self.source)}

    @classmethod
    def load(cls, data: Any) -> Cursor | None:
        """The cursor saved by an earlier delivery; None if there is none (or it is unreadable)."""
        if not isinstance(data, dict):
            return None
        try:
            return cls(**{**data, "source": Validators(**data["source"])})
        except (KeyError, TypeError):
            log.warning("unreadable download cursor; starting over")
            return None

    def range_headers(self) -> dict[str, str]:
        if_range = self.source.if_range
        assert if_range is not None
        return {"Range": f"bytes={self.offset}-", "If-Range": if_range}


def why_restart(response: httpx.Response, cursor: Cursor) -> str | None:
    """Why this answer to a ranged request cannot continue the upload; None if it can."""
    if response.status_code == 416:
        return f"the server refused the range from byte {cursor.offset}"
    if (change := cursor.source.change_to(Validators.of(response))) is not None:
        return f"the source changed ({change})"
    if response.status_code != 206:
        return f"the server sent the whole file again ({response.status_code}, not 206)"
    start = _range_start(response)
    if start != cursor.offset:
        return f"the server sent bytes from {start}, not from {cursor.offset}"
    return None


@dataclass
class Download:
    """One https:// source on its way into a Storage object, as far as one delivery takes it."""

    url: str
    storage: Storage
    # The object's name, given the source's first `head_bytes` bytes; raises to refuse them.
    name_for: Callable[[bytes], str]
    # Keeps a cursor (JSON-able) for a later delivery: ctx.checkpoint, or a wrapper of it.
    save: Callable[[dict[str, Any]], Awaitable[None]]
    max_bytes: int
    chunk_bytes: int = 8 * 1024 * 1024
    head_bytes: int = 512
    max_redirects: int = 5
    rules: AddressRules = field(default_factory=AddressRules)
    verify: ssl.SSLContext | bool = True
    progress: Callable[[int, int | None], None] = lambda done, total: None
    between_chunks: Callable[[], Awaitable[None]] = _nothing
    fetched: int = field(default=0, init=False)  # bytes read from the source in this delivery
    _restarts: int = field(default=0, init=False)
    _saved_at: float = field(default=float("-inf"), init=False)
    _span: tuple[int, int] = field(default=(0, 0), init=False)  # committed here: from, to

    async def run(self, cursor: Any) -> Artifact:
        """Carry on from `cursor` (None at first) until the object is whole."""
        began, saved = time.monotonic(), Cursor.load(cursor)
        try:
            async with new_client(self.verify) as client:
                return await self._run(client, saved)
        finally:
            log.info(
                "source bytes fetched in this delivery",
                extra={
                    "fetched_bytes": self.fetched,
                    "committed_from": self._span[0],
                    "committed_to": self._span[1],
                    "seconds": round(time.monotonic() - began, 3),
                },
            )

    async def _run(self, client: httpx.AsyncClient, saved: Cursor | None) -> Artifact:
        if saved is not None:
            self._restarts = saved.restarts
            settled = await self._settled(saved)
            if isinstance(settled, Artifact):
                return settled
            saved = settled
        if saved is None:
            return await self._fresh(client)
        async with open_source(
            client, self.url, self.rules, self.max_redirects, saved.range_headers()
        ) as (response, _):
            if _unsatisfiable_at(response) == saved.offset:  # every byte is in: only close it
                return await self._close(saved, saved.offset)
            why = why_restart(response, saved)
            if why is None:
                return await self._pump(response, saved, b"")
            self._restart(why)
            if response.status_code == 200:
                return await self._start(response)  # the whole file, from byte 0
        return await self._fresh(client)

    async def _settled(self, saved: Cursor) -> Cursor | Artifact | None:
        """What the saved session holds: the finished object, a cursor at its offset, or None
        (after saying why) when there is nothing to continue."""
        if saved.source.if_range is None:
            self._restart("the source has no ETag or Last-Modified to tell it from another file")
            return None
        held = await asyncio.to_thread(self.storage.stream_status, saved.session)
        if held is None:
            stored = await self._stored(saved)
            if stored is None:
                self._restart("the upload session is gone")
            return stored
        if held.complete:
            return self._artifact(saved, held.size_bytes)
        length = saved.source.length
        if length is not None and held.size_bytes == length:  # whole, only never closed
            return await self._close(saved, length)
        if length is not None and held.size_bytes > length:
            self._restart("the upload session holds more than the source has")
            return None
        return replace(saved, offset=held.size_bytes)

    async def _stored(self, saved: Cursor) -> Artifact | None:
        """The object, if its session was closed with all of it (sessions end with uploads)."""
        found = await asyncio.to_thread(self.storage.stat, self.storage.uri(saved.object_name))
        if found is None or found.size_bytes != saved.source.length:
            return None
        return self._artifact(saved, found.size_bytes)

    async def _close(self, saved: Cursor, length: int) -> Artifact:
        write = self.storage.stream_write
        await asyncio.to_thread(write, saved.session, length, b"", length)
        return self._artifact(saved, length)

    def _restart(self, why: str) -> None:
        self._restarts += 1
        if self._restarts > MAX_RESTARTS:
            raise PermanentError(
                f"The download started over {MAX_RESTARTS} times and cannot get ahead: {why}.",
                code="SOURCE_NOT_RESUMABLE",
            )
        log.warning(
            "the download starts over from byte 0: %s", why, extra={"restarts": self._restarts}
        )

    async def _fresh(self, client: httpx.AsyncClient) -> Artifact:
        async with open_source(client, self.url, self.rules, self.max_redirects) as (response, _):
            return await self._start(response)

    async def _start(self, response: httpx.Response) -> Artifact:
        """From byte 0: check the size and the first bytes, then open a new upload session."""
        source = Validators.of(response)
        declared = source.length or _whole_length(response)
        if declared is not None and declared > self.max_bytes:
            raise SourceTooLarge(f"The source is {declared} bytes; the limit is {self.max_bytes}.")
        async with contextlib.aclosing(self._pieces(response, 0)) as pieces:
            head = bytearray()
            async for piece in pieces:
                head += piece
                if len(head) >= self.head_bytes:
                    break
            name = self.name_for(bytes(head[: self.head_bytes]))
            content_type = response.headers.get("content-type", "application/octet-stream")
            content_type = content_type.split(";")[0].strip() or "application/octet-stream"
            session = await asyncio.to_thread(self.storage.start_stream, name, content_type)
            cursor = Cursor(session, name, content_type, 0, source, self._restarts)
            return await self._upload(pieces, cursor, bytes(head))

    async def _pump(self, response: httpx.Response, cursor: Cursor, head: bytes) -> Artifact:
        length = cursor.source.length
        if length is not None and length > self.max_bytes:
            raise SourceTooLarge(f"The source is {length} bytes; the limit is {self.max_bytes}.")
        async with contextlib.aclosing(self._pieces(response, cursor.offset)) as pieces:
            return await self._upload(pieces, cursor, head)

    async def _upload(self, pieces: AsyncIterator[bytes], cursor: Cursor, head: bytes) -> Artifact:
        """Send the source's bytes from `cursor.offset` on, a chunk at a time, to its session."""
        pending = bytearray(head)
        writer = _Writer(self.storage, cursor.session, cursor.offset)
        self._span = (cursor.offset, cursor.offset)
        try:
            async with writer:
                return await self._send(pieces, cursor, pending, writer)
        finally:
            self._span = (cursor.offset, writer.committed)

    async def _send(
        self, pieces: AsyncIterator[bytes], cursor: Cursor, pending: bytearray, writer: _Writer
    ) -> Artifact:
        async for piece in pieces:
            pending += piece
            while len(pending) >= self.chunk_bytes:
                await writer.send(bytes(pending[: self.chunk_bytes]))
                del pending[: self.chunk_bytes]
                if self._saved_at == float("-inf"):
                    # A delivery's first piece is waited for, so it saves a cursor (and counts
                    # as progress) as early as it can; the rest overlap with reading.
                    await writer.settle()
                if writer.committed > self._span[1]:
                    await self._committed(cursor, writer.committed)
        size = writer.sent + len(pending)
        if cursor.source.length is not None and size != cursor.source.length:
            raise TransientError(
                f"The source ended after {size} of its {cursor.source.length} bytes."
            )
        await writer.send(bytes(pending), total=size)
        await writer.settle()
        log.info("source stored", extra={"size_bytes": size, "restarts": self._restarts})
        return self._artifact(cursor, size)

    async def _committed(self, cursor: Cursor, offset: int) -> None:
        self._span = (self._span[0], offset)
        self.progress(offset, cursor.source.length)
        now = time.monotonic()
        if now - self._saved_at >= CHECKPOINT_SECONDS:
            await self.save(replace(cursor, offset=offset, restarts=self._restarts).dump())
            self._saved_at = now

    async def _pieces(self, response: httpx.Response, offset: int) -> AsyncGenerator[bytes, None]:
        """The body from `offset` on, counted, refused past the limit, cancellable between."""
        async for piece in response.aiter_bytes(_READ_BYTES):
            self.fetched += len(piece)
            offset += len(piece)
            if offset > self.max_bytes:
                raise SourceTooLarge(f"The source is over the limit of {self.max_bytes} bytes.")
            yield piece
            await self.between_chunks()

    def _artifact(self, cursor: Cursor, size: int) -> Artifact:
        uri = self.storage.uri(cursor.object_name)
        return Artifact(uri=uri, size_bytes=size, content_type=cursor.content_type)


class _Writer:
    """Pieces on their way into an upload session: one in flight while the next is read."""

    def __init__(self, storage: Storage, session: str, offset: int) -> None:
        self._storage = storage
        self._session = session
        self.committed = offset  # bytes the session is known to hold
        self.sent = offset  # bytes handed to it so far
        self._flight: tuple[bytes, int, int | None, asyncio.Task[Committed]] | None = None

    async def __aenter__(self) -> _Writer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        # No write may outlive its delivery: the next one asks the session where it stands.
        if self._flight is not None:
            with contextlib.suppress(Exception):
                held = await _uncancelled(self._flight[3])
                self.committed = max(self.committed, held.size_bytes)

    async def send(self, data: bytes, total: int | None = None) -> None:
        """Start sending the next piece (the last one with the object's `total` size)."""
        await self.settle()
        self._fly(data, self.sent, total)
        self.sent += len(data)

    async def settle(self) -> None:
        """Wait for the piece in flight; send again whatever of it the session did not keep."""
        while self._flight is not None:
            data, start, total, task = self._flight
            held = await _uncancelled(task)
            self._flight = None
            end = start + len(data)
            if held.complete or held.size_bytes >= end:
                self.committed = held.size_bytes
            elif held.size_bytes < start:
                raise TransientError("The upload session lost bytes it had taken.")
            else:
                self._fly(data[held.size_bytes - start :], held.size_bytes, total)

    def _fly(self, data: bytes, start: int, total: int | None) -> None:
        write = self._storage.stream_write
        task = asyncio.create_task(asyncio.to_thread(write, self._session, start, data, total))
        self._flight = (data, start, total, task)


async def _uncancelled(task: asyncio.Task[Committed]) -> Committed:
    """The task's result; if we are cancelled meanwhile, still wait for it, then stop."""
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        with contextlib.suppress(Exception):
            await task
        raise


def _whole_length(response: httpx.Response) -> int | None:
    """The whole file's size: Content-Length of a 200, the total in a 206's Content-Range."""
    if response.status_code == 206:
        match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
        return int(match[3]) if match and match[3] != "*" else None
    declared = response.headers.get("content-length", "")
    return int(declared) if declared.isdigit() else None


def _unsatisfiable_at(response: httpx.Response) -> int | None:
    """The file's size a 416 names (`Content-Range: bytes */SIZE`): a range that starts there
    asks for nothing."""
    match = re.fullmatch(r"bytes \*/(\d+)", response.headers.get("content-range", "").strip())
    return int(match[1]) if response.status_code == 416 and match else None


def _range_start(response: httpx.Response) -> int | None:
    match = _CONTENT_RANGE.fullmatch(response.headers.get("content-range", "").strip())
    return int(match[1]) if match else None
