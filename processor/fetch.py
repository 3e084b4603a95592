"""Downloading from the public internet without becoming a proxy into the private one.

The host is resolved here, every address it resolves to is checked, and the connection goes to
the checked address (with the original name for Host and TLS), so a DNS answer that changes
between check and connect cannot smuggle in an internal address. Redirects are followed by hand,
each one checked the same way, and only so many.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx

from jobs.cloud.storage import SourceTooLarge
from jobs.contract.errors import PermanentError, TransientError
from jobs.contract.settings import Settings
from jobs.contract.sources import check_address, check_url_without_network

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_REDIRECTS = {301, 302, 303, 307, 308}
_GONE = {401, 403, 404, 410, 451}


@dataclass(frozen=True)
class Fetched:
    size_bytes: int
    content_type: str
    final_url: str


@dataclass(frozen=True)
class AddressRules:
    """How URLs and addresses are checked; the default allows only the public internet.

    `pinned` names hosts reached at a fixed address, unchecked: local test stacks only
    (LONGRUN_SOURCE_HOST_ADDRESSES, which settings refuse outside LONGRUN_LOCAL).
    """

    check_url: Callable[[str], str] = check_url_without_network
    check_address: Callable[[IPAddress], None] = check_address
    pinned: Mapping[str, IPAddress] = field(default_factory=dict)

    @classmethod
    def of(cls, settings: Settings) -> AddressRules:
        return cls(pinned=dict(settings.source_host_addresses))


def trusted(settings: Settings) -> ssl.SSLContext | bool:
    """What source certificates are checked against: the system's CAs, plus a local test CA."""
    if settings.source_ca_file is None:
        return True
    context = ssl.create_default_context()
    context.load_verify_locations(cafile=str(settings.source_ca_file))
    return context


async def resolve_checked(host: str, port: int, rules: AddressRules) -> IPAddress:
    """One address of `host`, after checking every address it resolves to."""
    if host in rules.pinned:
        return rules.pinned[host]
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise PermanentError(f"{host} does not resolve.", code="SOURCE_UNREACHABLE") from exc
    addresses = [ipaddress.ip_address(info[4][0]) for info in infos]
    for address in addresses:
        rules.check_address(address)
    return addresses[0]


async def fetch_to_file(
    url: str,
    destination: Path,
    *,
    max_bytes: int,
    max_redirects: int,
    progress: Callable[[int, int | None], None] = lambda done, total: None,
    between_chunks: Callable[[], Awaitable[None]] | None = None,
    rules: AddressRules = AddressRules(),
    verify: ssl.SSLContext | bool = True,
) -> Fetched:
    """Stream an https:// URL into `destination`, refusing more than `max_bytes`."""
    async with (
        new_client(verify) as client,
        open_source(client, url, rules, max_redirects) as (response, final_url),
    ):
        return await _save(response, final_url, destination, max_bytes, progress, between_chunks)


def new_client(verify: ssl.SSLContext | bool = True) -> httpx.AsyncClient:
    """An HTTP client for sources: no proxies from the environment, patient reads."""
    timeout = httpx.Timeout(30.0, read=60.0)
    return httpx.AsyncClient(verify=verify, timeout=timeout, trust_env=False)


@contextlib.asynccontextmanager
async def open_source(
    client: httpx.AsyncClient,
    url: str,
    rules: AddressRules,
    max_redirects: int,
    headers: Mapping[str, str] | None = None,
) -> AsyncIterator[tuple[httpx.Response, str]]:
    """A streamed GET of an https:// URL and the URL it ended at, redirects followed by hand
    (each one checked), answered 200, or 206 to a request with `Range` in `headers`."""
    request_headers = {"Accept": "*/*", "Accept-Encoding": "identity", **(headers or {})}
    for _ in range(max_redirects + 1):
        request = await checked_request(client, "GET", url, rules, request_headers)
        response = await client.send(request, stream=True)
        try:
            if response.status_code in _REDIRECTS and "location" in response.headers:
                url = urljoin(url, response.headers["location"])
                continue
            _raise_for_status(response, ranged="Range" in request_headers)
            yield response, url
            return
        finally:
            await response.aclose()
    raise PermanentError(
        f"More than {max_redirects} redirects from the source URL.", code="TOO_MANY_REDIRECTS"
    )


async def checked_request(
    client: httpx.AsyncClient,
    method: str,
    url: str,
    rules: AddressRules,
    headers: dict[str, str],
    content: bytes | None = None,
) -> httpx.Request:
    """A request to the checked address of the URL's host, with the name kept for Host and TLS.

    The host is the one `rules.check_url` normalised (IDNA, numeric forms): the URL's own
    spelling of it is never parsed again, so what was checked is what is resolved and named.
    """
    host = rules.check_url(url)
    parts = urlsplit(url)
    port = parts.port or 443
    address = await resolve_checked(host, port, rules)
    target = httpx.URL(
        urlunsplit(("https", _netloc(str(address), port), parts.path, parts.query, ""))
    )
    headers = {"Host": _netloc(host, parts.port), **headers}
    return client.build_request(
        method, target, headers=headers, content=content, extensions={"sni_hostname": host}
    )


def _netloc(host: str, port: int | None) -> str:
    """`host[:port]`, with an IPv6 address in brackets."""
    bracketed = f"[{host}]" if ":" in host else host
    return bracketed if port is None else f"{bracketed}:{port}"


def _raise_for_status(response: httpx.Response, ranged: bool) -> None:
    status = response.status_code
    if status == 200 or (ranged and status in (206, 416)):
        return  # a refused range (416) is the caller's to judge: it may start over
    if status in _GONE or (400 <= status < 500 and status != 429):
        raise PermanentError(f"The source URL answered {status}.", code="SOURCE_UNREACHABLE")
    raise TransientError(f"The source URL answered {status}; will try again.")


async def _save(
    response: httpx.Response,
    url: str,
    destination: Path,
    max_bytes: int,
    progress: Callable[[int, int | None], None],
    between_chunks: Callable[[], Awaitable[None]] | None,
) -> Fetched:
    declared = response.headers.get("content-length")
    total = int(declared) if declared and declared.isdigit() else None
    if total is not None and total > max_bytes:
        raise SourceTooLarge(f"The source is {total} bytes; the limit is {max_bytes} bytes.")
    received = 0
    with destination.open("wb") as sink:
        async for chunk in response.aiter_bytes(1024 * 1024):
            received += len(chunk)
            if received > max_bytes:
                raise SourceTooLarge(f"The source is over the limit of {max_bytes} bytes.")
            sink.write(chunk)
            progress(received, total)
            if between_chunks is not None:
                await between_chunks()
    content_type = response.headers.get("content-type", "application/octet-stream")
    return Fetched(size_bytes=received, content_type=content_type.split(";")[0], final_url=url)
