"""https:// hosts are read at submit the way the fetcher's resolver will read them, so what can
be refused without network (addresses in any spelling, local names, /etc/hosts) is refused
before a job exists, and the fetcher connects by the same normalised name."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import ClassVar

import pytest

from jobs.contract.sources import SourceNotAllowed, check_url_without_network
from processor.fetch import AddressRules, fetch_to_file
from tests.support import serve_tls

LOOPBACK = [
    "https://2130706433/x.mp4",
    "https://0x7f000001/x.mp4",
    "https://0X7F000001/x.mp4",
    "https://127.1/x.mp4",
    "https://127.0.1/x.mp4",
    "https://017700000001/x.mp4",
    "https://0177.0.0.1/x.mp4",
    "https://0x7f.1/x.mp4",
    "https://127.0.0.1./x.mp4",
    "https://[::ffff:7f00:1]/x.mp4",
    "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/x.mp4",  # full-width
    "https://LOCALHOST./x.mp4",
    "https://localhost\u3002/x.mp4",  # ideographic full stop
    "https://\uff11\uff12\uff17.0.0.1/x.mp4",  # full-width digits
    "https://0/x.mp4",
    "https://0x0/x.mp4",
    "https://10.1/x.mp4",
    "https://0xa9fea9fe/x.mp4",  # 169.254.169.254, the metadata server
    "https://2852039166/x.mp4",
    "https://intranet/x.mp4",  # completed from search domains
    "https://printer.local/x.mp4",
    "https://router.home.arpa/x.mp4",
    "https://host.localdomain/x.mp4",
    "https://metadata.google.internal./x.mp4",
    "https://%6cocalhost/x.mp4",
    "https://local%68ost/x.mp4",
    "https://a\uff20localhost/x.mp4",  # full-width @: NFKC makes it credentials
    "https://exa mple.com/x.mp4",
    "https://example..com/x.mp4",
    "https://example.com:99999/x.mp4",
    "https://example.com:port/x.mp4",
]


@pytest.mark.parametrize("url", LOOPBACK)
def test_private_addresses_and_local_names_are_refused_in_any_spelling(url: str) -> None:
    with pytest.raises(SourceNotAllowed):
        check_url_without_network(url)


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://example.com/x.mp4", "example.com"),
        ("https://EXAMPLE.com./x.mp4", "example.com"),
        ("https://\uff45\uff58\uff41\uff4d\uff50\uff4c\uff45.com/x.mp4", "example.com"),
        ("https://b\u00fccher.example/x.mp4", "xn--bcher-kva.example"),
        ("https://0x08080808/x.mp4", "8.8.8.8"),
        ("https://134744072/x.mp4", "8.8.8.8"),
        ("https://8.8.8.8:8443/x.mp4", "8.8.8.8"),
        ("https://[2001:4860:4860::8888]/x.mp4", "2001:4860:4860::8888"),
    ],
)
def test_public_hosts_come_back_as_the_resolver_will_read_them(url: str, host: str) -> None:
    assert check_url_without_network(url) == host


def test_names_the_hosts_file_maps_to_private_addresses_are_refused(tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text(
        "127.0.0.1 localhost\n"
        "10.20.30.40  files.corp.example   FILES-ALIAS.example # the file server\n"
        "# 10.0.0.9 commented.example\n"
        "93.184.215.14 public.example\n"
        "fe80::1%eth0 linklocal.example\n"
    )

    for name in ("files.corp.example", "files-alias.example", "FILES.corp.example."):
        with pytest.raises(SourceNotAllowed):
            check_url_without_network(f"https://{name}/x.mp4", hosts)
    with pytest.raises(SourceNotAllowed):
        check_url_without_network("https://linklocal.example/x.mp4", hosts)
    assert check_url_without_network("https://commented.example/x", hosts) == "commented.example"
    assert check_url_without_network("https://public.example/x", hosts) == "public.example"


BODY = b"RIFF" + bytes(range(256)) * 16


class Handler(BaseHTTPRequestHandler):
    """Answers /file, and remembers the Host header each request named."""

    hosts: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        Handler.hosts.append(self.headers["Host"])
        self.send_response(200)
        self.send_header("Content-Length", str(len(BODY)))
        self.end_headers()
        self.wfile.write(BODY)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def tls_server() -> Iterator[tuple[int, ssl.SSLContext]]:
    with serve_tls(Handler) as served:
        yield served


async def test_the_fetcher_connects_by_the_normalised_name_not_the_url_s_spelling(
    tls_server: tuple[int, ssl.SSLContext], tmp_path: Path
) -> None:
    port, verify = tls_server
    # The server is on loopback, which the real rules refuse: these rules normalise only.
    loopback_allowed = AddressRules(
        check_url=lambda url: "localhost", check_address=lambda ip: None
    )
    full_width = "\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54"

    fetched = await fetch_to_file(
        f"https://{full_width}:{port}/file",
        tmp_path / "x",
        max_bytes=10**6,
        max_redirects=0,
        rules=loopback_allowed,
        verify=verify,
    )

    assert (tmp_path / "x").read_bytes() == BODY
    assert fetched.size_bytes == len(BODY)
    assert Handler.hosts[-1] == f"localhost:{port}"


async def test_the_real_fetcher_refuses_a_numeric_loopback_before_connecting(
    tmp_path: Path,
) -> None:
    with pytest.raises(SourceNotAllowed, match=r"127\.0\.0\.1"):
        await fetch_to_file("https://0x7f.1:1/x", tmp_path / "x", max_bytes=10, max_redirects=0)
