"""Where a media job's source may come from: an upload of the caller's, a `gs://` object, or a
public `https://` URL; nothing else.

The API checks what it can without network (scheme, IP literals, local names) so a bad source is
refused at submit; the processor checks again after resolving the name, and connects only to the
address it checked, so DNS tricks cannot reach an internal address.
"""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from urllib.parse import urlsplit

from jobs.errors import PermanentError
from jobs.models import is_job_id

# Names that always mean "this machine" or "this cloud's internals", whatever DNS says.
_LOCAL_NAMES = ("localhost", "metadata", "metadata.google.internal")
_LOCAL_SUFFIXES = (".localhost", ".internal", ".local")
# Google's metadata server also answers on these, outside the link-local range.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}


# The pydantic error type of a refused source, so the API can answer SOURCE_NOT_ALLOWED.
SOURCE_ERROR = "source_not_allowed"


class SourceNotAllowed(PermanentError):
    code = "SOURCE_NOT_ALLOWED"


class SourceKind(StrEnum):
    UPLOAD = "upload"
    GCS = "gs"
    HTTPS = "https"


def source_kind(source: str) -> SourceKind:
    """What kind of source this is; SourceNotAllowed for any other scheme or form."""
    if source.startswith("gs://"):
        bucket, _, name = source[5:].partition("/")
        if bucket and name:
            return SourceKind.GCS
        raise SourceNotAllowed(f"{source!r} is not a gs://bucket/object URI.")
    if "://" in source or ":" in source:
        scheme = source.split(":", 1)[0].lower()
        if scheme == "https":
            check_url_without_network(source)
            return SourceKind.HTTPS
        raise SourceNotAllowed(
            f"Sources may be an upload id, gs:// or https://; {scheme}: is not allowed."
        )
    if is_job_id(source):
        return SourceKind.UPLOAD
    raise SourceNotAllowed(f"{source!r} is not an upload id, a gs:// URI or an https:// URL.")


def check_url_without_network(url: str) -> str:
    """The URL's host, if nothing about it (scheme, literal address, name) is off limits."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower().rstrip(".")
    if parts.scheme != "https" or not host:
        raise SourceNotAllowed(f"{url!r} is not an https:// URL with a host.")
    if parts.username or parts.password:
        raise SourceNotAllowed("URLs may not carry credentials.")
    if host in _LOCAL_NAMES or host.endswith(_LOCAL_SUFFIXES):
        raise SourceNotAllowed(f"{host} is a local or internal name.")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return host
    check_address(address)
    return host


def check_address(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    """Refuse every address that is not plainly on the public internet."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA or not address.is_global or address.is_multicast:
        raise SourceNotAllowed(f"{address} is not a public internet address.")
