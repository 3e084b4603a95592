"""Cloud Storage: where uploads, job sources and artifacts live.

Google's client is synchronous; async callers run these methods in a worker thread.
Objects are laid out as `uploads/{upload_id}/{filename}` and `jobs/{job_id}/{name}`; every
`gs://` URI, ours and users' alike, is taken apart by the one strict parser in
`jobs.contract.sources`.
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import IO, TYPE_CHECKING, BinaryIO

import google.auth.transport.requests
import google.cloud.storage as storage
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from google.api_core.exceptions import NotFound, PreconditionFailed
from google.auth.credentials import AnonymousCredentials, Signing
from google.oauth2 import service_account

from jobs.contract.errors import PermanentError
from jobs.contract.models import Artifact
from jobs.contract.settings import Settings
from jobs.contract.sources import parse_gs_uri

if TYPE_CHECKING:
    from _typeshed import WriteableBuffer

# Read and write in pieces this big: memory stays flat whatever the object's size.
CHUNK_BYTES = 8 * 1024 * 1024
# A seeking reader fetches at least this much per request: big enough that a request's latency
# is small beside its transfer, small enough that a seek wastes little of what was fetched.
RANGE_BYTES = 2 * 1024 * 1024


class SourceTooLarge(PermanentError):
    code = "SOURCE_TOO_LARGE"


class SourceChanged(PermanentError):
    """The object was replaced or deleted while it was being read: what was read is no longer
    one file, and reading it again would be reading another."""

    code = "SOURCE_CHANGED"


class RangedReader(io.RawIOBase, BinaryIO):
    """A seekable reader of one generation of an object that fetches only what is read.

    It holds the last range it fetched: a read within it costs nothing, a read beyond it fetches
    the next `chunk_bytes` (or the whole read, if bigger) with one ranged request, a seek fetches
    nothing. Each range is checked to come from the generation the reader opened (SourceChanged
    if not), and counted in `bytes_read`.

    The client's own reader (`Blob.open("rb")`) drops what it holds whenever a read runs past
    it, and on a seek back into what it last returned, so FFmpeg (which reads up to the end of a
    file and then seeks back) had it fetch the same bytes twice.
    """

    def __init__(self, blob: storage.Blob, chunk_bytes: int) -> None:
        super().__init__()
        self._blob, self._chunk_bytes = blob, chunk_bytes
        self.size, self.generation = int(blob.size), int(blob.generation)
        self.bytes_read = 0
        self._position = 0
        self._held, self._held_at = b"", 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self.size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def read(self, size: int | None = -1) -> bytes:
        left = max(0, self.size - self._position)
        wanted = left if size is None or size < 0 else min(size, left)
        pieces = []
        while wanted > 0:
            offset = self._position - self._held_at
            piece = self._held[offset : offset + wanted] if offset >= 0 else b""
            if not piece:
                if not self._fetch(wanted):
                    break  # The object ends before its size said: what there is, is all.
                continue
            pieces.append(piece)
            self._position += len(piece)
            wanted -= len(piece)
        return b"".join(pieces)

    def readinto(self, buffer: WriteableBuffer) -> int:
        view = memoryview(buffer).cast("B")
        data = self.read(len(view))
        view[: len(data)] = data
        return len(data)

    def _fetch(self, wanted: int) -> bool:
        """Fetch the range from the position on; False if there was nothing there."""
        start = self._position
        count = min(max(wanted, self._chunk_bytes), self.size - start)
        try:
            # A range has no checksum of its own to check; the generation pins the bytes.
            data: bytes = self._blob.download_as_bytes(
                start=start,
                end=start + count - 1,
                checksum=None,
                if_generation_match=self.generation,
            )
        except (PreconditionFailed, NotFound) as error:
            raise self._changed() from error
        # Cloud Storage names the generation it served (the emulator does not).
        served = self._blob.generation
        if served is not None and int(served) != self.generation:
            raise self._changed()
        self.bytes_read += len(data)
        self._held, self._held_at = data, start
        return bool(data)

    def _changed(self) -> SourceChanged:
        return SourceChanged(f"{self._blob.name} changed while it was read; it must not change.")


class Storage:
    """longrun's bucket, and reads of objects in other buckets the caller can reach."""

    def __init__(self, settings: Settings) -> None:
        self.emulated = settings.storage_emulator_host is not None
        if self.emulated:
            # The emulator takes no credentials; the client finds it via STORAGE_EMULATOR_HOST.
            self._client = storage.Client(
                project=settings.project_id,
                credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            )
        else:
            self._client = storage.Client(project=settings.project_id)
        self.bucket = self._client.bucket(settings.bucket_name)
        self._download_url_seconds = settings.download_url_seconds
        self._emulator_url = settings.storage_emulator_host
        self._emulator_signer: service_account.Credentials | None = None

    def uri(self, name: str) -> str:
        return f"gs://{self.bucket.name}/{name}"

    def _blob(self, uri: str) -> storage.Blob:
        bucket, name = parse_gs_uri(uri)
        return self._client.bucket(bucket).blob(name)

    def ensure_bucket(self) -> None:
        """Create the bucket if missing (local stacks; the deploy scripts make the real one)."""
        if not self.bucket.exists():
            self._client.create_bucket(self.bucket.name)

    def upload_file(self, path: Path, name: str, content_type: str) -> Artifact:
        blob = self.bucket.blob(name, chunk_size=CHUNK_BYTES)
        blob.upload_from_filename(str(path), content_type=content_type)
        return Artifact(
            uri=self.uri(name), size_bytes=path.stat().st_size, content_type=content_type
        )

    def upload_bytes(self, data: bytes, name: str, content_type: str) -> Artifact:
        self.bucket.blob(name).upload_from_string(data, content_type=content_type)
        return Artifact(uri=self.uri(name), size_bytes=len(data), content_type=content_type)

    def delete(self, uri: str) -> None:
        """Delete an object; one already gone is not an error (a retry may delete it twice)."""
        with contextlib.suppress(NotFound):
            self._blob(uri).delete()

    def stat(self, uri: str) -> Artifact | None:
        """Size and type of an object, or None if there is none."""
        bucket, name = parse_gs_uri(uri)
        blob = self._client.bucket(bucket).get_blob(name)
        if blob is None:
            return None
        content_type = blob.content_type or "application/octet-stream"
        return Artifact(uri=uri, size_bytes=int(blob.size or 0), content_type=content_type)

    def download(self, uri: str, path: Path, max_bytes: int | None = None) -> Artifact:
        """Copy an object to a local file, refusing one larger than `max_bytes` before reading."""
        found = self.stat(uri)
        if found is None:
            raise PermanentError(f"There is no object at {uri}.", code="SOURCE_NOT_FOUND")
        if max_bytes is not None and found.size_bytes > max_bytes:
            raise SourceTooLarge(
                f"The source is {found.size_bytes} bytes; the limit is {max_bytes} bytes."
            )
        self._blob(uri).download_to_filename(str(path))
        return found

    def head(self, uri: str, size: int) -> bytes:
        """The first `size` bytes of an object (a ranged read)."""
        data: bytes = self._blob(uri).download_as_bytes(start=0, end=size - 1)
        return data

    def read_bytes(self, uri: str) -> bytes:
        """A whole (small) object."""
        data: bytes = self._blob(uri).download_as_bytes()
        return data

    def copy(self, uri: str, name: str) -> Artifact:
        """Copy an object into longrun's bucket server-side (no bytes pass through here)."""
        bucket, source_name = parse_gs_uri(uri)
        source = self._client.bucket(bucket)
        copied = source.copy_blob(source.blob(source_name), self.bucket, name)
        content_type = copied.content_type or "application/octet-stream"
        return Artifact(
            uri=self.uri(name), size_bytes=int(copied.size or 0), content_type=content_type
        )

    def open_read(self, uri: str) -> IO[bytes]:
        """A streaming reader of an object (ranged reads of CHUNK_BYTES)."""
        reader: IO[bytes] = self._blob(uri).open("rb", chunk_size=CHUNK_BYTES)
        return reader

    def open_ranged(
        self, uri: str, *, generation: int | None = None, chunk_bytes: int = RANGE_BYTES
    ) -> RangedReader:
        """A seekable reader of an object that fetches only the ranges read, and counts them.

        It reads the generation current now, or `generation` (that of an earlier look at the
        object, so that every reader of one job reads one file): SourceChanged if the object is
        no longer that generation, now or while it is read.
        """
        bucket, name = parse_gs_uri(uri)
        blob = self._client.bucket(bucket).get_blob(name)
        if blob is None:
            raise PermanentError(f"There is no object at {uri}.", code="SOURCE_NOT_FOUND")
        if generation is not None and int(blob.generation) != generation:
            raise SourceChanged(f"{uri} is no longer generation {generation}.")
        return RangedReader(blob, chunk_bytes)

    def upload_session(
        self, name: str, content_type: str, size_bytes: int, origin: str | None
    ) -> str:
        """A resumable upload session URL the client uploads to directly, without credentials.

        The session URL is itself the authorisation (valid for a week, for this one object,
        at most `size_bytes`), so no signing key or signBlob permission is needed, and it works
        the same on the emulator.
        """
        blob = self.bucket.blob(name)
        # `size` goes out as X-Upload-Content-Length: Cloud Storage then refuses a larger body
        # (the emulator does not; the fetch stage checks the stored size again).
        url: str = blob.create_resumable_upload_session(
            content_type=content_type, size=size_bytes, origin=origin
        )
        return url

    def download_url(self, uri: str) -> str | None:
        """A short-lived signed URL to read an object; None on the emulator, whose bytes the
        API streams itself (a client following a redirect there would need CORS it lacks)."""
        return None if self.emulated else self.signed_url(uri)

    def signed_url(self, uri: str) -> str:
        """A short-lived signed URL to read an object, ranges included (a media element seeks
        with them). On the emulator it is signed with a throwaway key and points at the
        emulator, which serves it without checking the signature."""
        blob = self._blob(uri)
        expiration = timedelta(seconds=self._download_url_seconds)
        if self.emulated:
            local: str = blob.generate_signed_url(
                version="v4",
                expiration=expiration,
                method="GET",
                credentials=self._throwaway_signer(),
                api_access_endpoint=self._emulator_url,
            )
            return local
        credentials = self._client._credentials
        signer: dict[str, str] = {}
        if not isinstance(credentials, Signing):
            # Cloud Run's metadata credentials hold no key: sign through the IAM signBlob API
            # as the service's own account (it needs Service Account Token Creator on itself).
            credentials.refresh(google.auth.transport.requests.Request())
            signer = {
                "service_account_email": credentials.service_account_email,
                "access_token": credentials.token,
            }
        url: str = blob.generate_signed_url(
            version="v4", expiration=expiration, method="GET", **signer
        )
        return url

    def _throwaway_signer(self) -> service_account.Credentials:
        if self._emulator_signer is None:
            key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            info = {
                "type": "service_account",
                "client_email": "emulator@longrun-local.iam.gserviceaccount.com",
                "private_key": pem.decode(),
                "token_uri": "http://127.0.0.1/unused",
            }
            from_info = service_account.Credentials.from_service_account_info
            self._emulator_signer = from_info(info)  # type: ignore[no-untyped-call]
        return self._emulator_signer

    def start_stream(self, name: str, content_type: str) -> str:
        """A resumable upload session for an object whose size is not known yet (a stream)."""
        url: str = self.bucket.blob(name).create_resumable_upload_session(content_type=content_type)
        return url

    def stream_status(self, session: str) -> Committed | None:
        """What an upload session holds so far; None once it is gone (expired or cancelled)."""
        response = self._put(session, b"", "bytes */*")
        if response.status_code in (404, 410):
            return None
        return _committed(response)

    def stream_write(self, session: str, offset: int, data: bytes, total: int | None) -> Committed:
        """Send the bytes at `offset` to an upload session; `total` (the object's size) ends it.

        Cloud Storage may keep fewer bytes than it was sent: the answer says how many it holds.
        """
        end = offset + len(data) - 1
        span = f"{offset}-{end}" if data else "*"
        response = self._put(session, data, f"bytes {span}/{'*' if total is None else total}")
        return _committed(response)

    def _put(self, session: str, data: bytes, content_range: str) -> requests.Response:
        # The session URL is the credential; the client's session adds a token, which is harmless.
        response: requests.Response = self._client._http.put(
            session, data=data, headers={"Content-Range": content_range}, timeout=_PUT_TIMEOUT
        )
        return response


# Seconds to connect to Cloud Storage, and to wait for its answer to one piece of an upload.
_PUT_TIMEOUT = (30.0, 300.0)


@dataclass(frozen=True)
class Committed:
    """How much of an upload session's object Cloud Storage holds, and whether it is whole."""

    size_bytes: int
    complete: bool


def _committed(response: requests.Response) -> Committed:
    """An upload session's answer: 308 with the bytes it holds so far, or 200/201 when whole."""
    if response.status_code in (200, 201):
        return Committed(int(response.json().get("size", 0)), complete=True)
    if response.status_code != 308:
        response.raise_for_status()
        raise requests.HTTPError(f"unexpected status {response.status_code}", response=response)
    held = response.headers.get("Range")  # "bytes=0-LAST"; none while it holds nothing
    return Committed(int(held.rsplit("-", 1)[1]) + 1 if held else 0, complete=False)
