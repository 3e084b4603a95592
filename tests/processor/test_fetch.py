"""The https:// fetcher against a real local TLS server: redirects, limits, refusals."""

from __future__ import annotations

import ipaddress
import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
import trustme
from pydantic import ValidationError

from jobs.cloud.storage import SourceTooLarge
from jobs.contract.errors import PermanentError, TransientError
from jobs.contract.settings import Settings
from jobs.contract.sources import SourceNotAllowed
from processor.fetch import AddressRules, fetch_to_file
from tests.support import serve_tls

BODY = b"RIFF" + bytes(range(256)) * 400


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/file":
            self._send(200, BODY)
        elif self.path == "/declared-huge":
            self.send_response(200)
            self.send_header("Content-Length", str(10**12))
            self.end_headers()
        elif self.path == "/undeclared-huge":
            self.send_response(200)
            self.end_headers()
            for _ in range(64):
                self.wfile.write(b"x" * 65536)
        elif self.path.startswith("/hop/"):
            left = int(self.path.rsplit("/", 1)[1])
            target = "/file" if left == 0 else f"/hop/{left - 1}"
            self.send_response(302)
            self.send_header("Location", target)
            self.end_headers()
        elif self.path == "/redirect-out":
            self.send_response(307)
            self.send_header("Location", "https://10.0.0.1/secret")
            self.end_headers()
        elif self.path == "/redirect-home":
            self.send_response(302)
            self.send_header("Location", f"https://localhost:{self.server.server_address[1]}/file")
            self.end_headers()
        elif self.path == "/missing":
            self._send(404, b"no")
        else:
            self._send(503, b"busy")

    def _send(self, status: int, body: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def tls_server() -> Iterator[tuple[str, ssl.SSLContext]]:
    with serve_tls(Handler) as (port, client_context):
        yield f"https://localhost:{port}", client_context


# This server is on loopback, which the real rules refuse; these rules let the mechanics run.
LOOPBACK_ALLOWED = AddressRules(check_url=lambda url: "localhost", check_address=lambda ip: None)


async def fetch(url: str, path: Path, verify: ssl.SSLContext, **limits: int) -> object:
    return await fetch_to_file(
        url,
        path,
        max_bytes=limits.get("max_bytes", 10**6),
        max_redirects=limits.get("max_redirects", 3),
        rules=LOOPBACK_ALLOWED,
        verify=verify,
    )


async def test_a_file_is_streamed_to_disk_over_verified_tls(
    tls_server: tuple[str, ssl.SSLContext], tmp_path: Path
) -> None:
    base, verify = tls_server
    seen: list[int] = []

    fetched = await fetch_to_file(
        f"{base}/file",
        tmp_path / "f",
        max_bytes=10**6,
        max_redirects=0,
        progress=lambda done, _total: seen.append(done),
        rules=LOOPBACK_ALLOWED,
        verify=verify,
    )

    assert (tmp_path / "f").read_bytes() == BODY
    assert fetched.size_bytes == len(BODY)
    assert seen[-1] == len(BODY)


async def test_redirects_are_followed_up_to_the_limit(
    tls_server: tuple[str, ssl.SSLContext], tmp_path: Path
) -> None:
    base, verify = tls_server

    await fetch(f"{base}/hop/3", tmp_path / "ok", verify, max_redirects=4)
    with pytest.raises(PermanentError) as refused:
        await fetch(f"{base}/hop/9", tmp_path / "no", verify, max_redirects=4)

    assert (tmp_path / "ok").read_bytes() == BODY
    assert refused.value.code == "TOO_MANY_REDIRECTS"


@pytest.mark.parametrize("path", ["/declared-huge", "/undeclared-huge"])
async def test_an_oversize_source_is_refused_without_reading_it_all(
    tls_server: tuple[str, ssl.SSLContext], tmp_path: Path, path: str
) -> None:
    base, verify = tls_server

    with pytest.raises(SourceTooLarge) as refused:
        await fetch(f"{base}{path}", tmp_path / "big", verify, max_bytes=256 * 1024)

    assert refused.value.code == "SOURCE_TOO_LARGE"
    written = (tmp_path / "big").stat().st_size if (tmp_path / "big").exists() else 0
    assert written <= 256 * 1024


async def test_a_missing_file_is_permanent_and_a_busy_server_transient(
    tls_server: tuple[str, ssl.SSLContext], tmp_path: Path
) -> None:
    base, verify = tls_server

    with pytest.raises(PermanentError) as missing:
        await fetch(f"{base}/missing", tmp_path / "m", verify)
    with pytest.raises(TransientError):
        await fetch(f"{base}/busy", tmp_path / "b", verify)

    assert missing.value.code == "SOURCE_UNREACHABLE"


@pytest.mark.parametrize(
    "url",
    [
        "https://localhost:1/x",
        "https://127.0.0.1:1/x",
        "https://2130706433:1/x",  # 127.0.0.1 as one number: only the resolver tells
        "https://[::1]:1/x",
    ],
)
async def test_the_real_rules_refuse_loopback_however_it_is_written(
    url: str, tmp_path: Path
) -> None:
    with pytest.raises(SourceNotAllowed):
        await fetch_to_file(url, tmp_path / "x", max_bytes=10, max_redirects=0)


async def test_a_redirect_into_a_private_address_is_refused(
    tls_server: tuple[str, ssl.SSLContext], tmp_path: Path
) -> None:
    base, verify = tls_server
    first_hop_only = AddressRules(
        check_url=lambda url: "localhost" if url.startswith(base) else _real_check(url),
        check_address=lambda ip: None,
    )

    with pytest.raises(SourceNotAllowed):
        await fetch_to_file(
            f"{base}/redirect-out",
            tmp_path / "x",
            max_bytes=10**6,
            max_redirects=2,
            rules=first_hop_only,
            verify=verify,
        )


def _real_check(url: str) -> str:
    from jobs.contract.sources import check_url_without_network

    return check_url_without_network(url)


def test_pinned_source_hosts_are_for_local_stacks_only() -> None:
    pinned = {"source_host_addresses": '{"vod.example": "127.0.0.1"}'}

    with pytest.raises(ValidationError, match="local stacks"):
        Settings.model_validate(pinned)
    local = Settings.model_validate({**pinned, "local": "true"})

    assert AddressRules.of(local).pinned == {"vod.example": ipaddress.ip_address("127.0.0.1")}
    assert AddressRules.of(Settings()).pinned == {}


async def test_a_pinned_host_reaches_only_itself_a_redirect_elsewhere_is_checked_as_ever(
    tmp_path: Path,
) -> None:
    ca = trustme.CA()
    pinned = AddressRules(pinned={"vod.example": ipaddress.ip_address("127.0.0.1")})
    with serve_tls(Handler, ca, "vod.example") as (port, verify):
        fetched = await fetch_to_file(
            f"https://vod.example:{port}/file",
            tmp_path / "ok",
            max_bytes=10**6,
            max_redirects=0,
            rules=pinned,
            verify=verify,
        )
        with pytest.raises(SourceNotAllowed):
            await fetch_to_file(
                f"https://vod.example:{port}/redirect-home",
                tmp_path / "no",
                max_bytes=10**6,
                max_redirects=2,
                rules=pinned,
                verify=verify,
            )

    assert fetched.size_bytes == len(BODY)
