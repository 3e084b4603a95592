"""Where a media job's source may come from: an upload of the caller's, a `gs://` object in a
bucket the operator allows, or a public `https://` URL; nothing else.

The API checks what it can without network (scheme, the exact spelling of `gs://` URIs, the
bucket allow-list, hosts normalised the way the resolver will read them) so a bad source is
refused at submit; the processor checks again, and after resolving a name it connects only to
the address it checked, so DNS tricks cannot reach an internal address.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import unicodedata
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from jobs.contract.errors import PermanentError
from jobs.contract.models import is_job_id

if TYPE_CHECKING:
    from jobs.contract.settings import Settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Names that always mean "this machine" or "this cloud's internals", whatever DNS says.
_LOCAL_NAMES = ("localhost", "metadata", "metadata.google.internal")
_LOCAL_SUFFIXES = (".localhost", ".internal", ".local", ".localdomain", ".home.arpa")
# Google's metadata server also answers on these, outside the link-local range.
_METADATA = {ipaddress.ip_address("169.254.169.254"), ipaddress.ip_address("fd00:ec2::254")}
# A host name after IDNA: ASCII labels only, so no escape or look-alike reaches the resolver.
_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*")
HOSTS_FILE = Path("/etc/hosts")

# Cloud Storage's naming rules, ASCII only: one dot-free name of 3-63 characters, or a dotted
# (domain) name of up to 222 whose components are each at most 63.
_BUCKET_COMPONENT = re.compile(r"[a-z0-9]([a-z0-9_-]{0,61}[a-z0-9])?")
_DOTTED_DECIMAL = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3}){3}")
_GOOGLE_LIKE = re.compile(r"g[o0][o0]g[l1]e")
_OBJECT_MAX_BYTES = 1024

# The pydantic error type of a refused source, so the API can answer SOURCE_NOT_ALLOWED.
SOURCE_ERROR = "source_not_allowed"
# The pydantic validation-context key under which callers pass their SourceRules.
SOURCE_RULES = "source_rules"


class SourceNotAllowed(PermanentError):
    code = "SOURCE_NOT_ALLOWED"


class SourceKind(StrEnum):
    UPLOAD = "upload"
    GCS = "gs"
    HTTPS = "https"


class GsObject(NamedTuple):
    """A `gs://` URI taken apart, each part already checked against Cloud Storage's rules."""

    bucket: str
    name: str

    @property
    def uri(self) -> str:
        return f"gs://{self.bucket}/{self.name}"


@dataclass(frozen=True)
class SourceRules:
    """Which buckets `gs://` sources may name: the operator's list, never longrun's own."""

    buckets: frozenset[str] = frozenset()
    own_bucket: str = ""

    @classmethod
    def of(cls, settings: Settings) -> SourceRules:
        return cls(frozenset(settings.source_buckets), settings.bucket_name)


def source_kind(source: str) -> SourceKind:
    """What kind of source this is, by its spelling alone; SourceNotAllowed for anything else."""
    scheme = source.split(":", 1)[0].lower() if ":" in source else ""
    if scheme == "gs":
        parse_gs_uri(source)
        return SourceKind.GCS
    if scheme == "https":
        check_url_without_network(source)
        return SourceKind.HTTPS
    if scheme:
        raise SourceNotAllowed(
            f"Sources may be an upload id, gs:// or https://; {scheme[:20]!r} is not allowed."
        )
    if is_job_id(source):
        return SourceKind.UPLOAD
    raise SourceNotAllowed(f"{source!r} is not an upload id, a gs:// URI or an https:// URL.")


def check_source(source: str, rules: SourceRules) -> SourceKind:
    """`source_kind`, and for `gs://` sources also whether this deployment reads that bucket."""
    kind = source_kind(source)
    if kind == SourceKind.GCS:
        check_bucket_allowed(parse_gs_uri(source).bucket, rules)
    return kind


def check_bucket_allowed(bucket: str, rules: SourceRules) -> None:
    """The processor's account can read more than any one user may: only listed buckets."""
    if bucket == rules.own_bucket:
        # It holds every user's uploads and results: those are reachable by upload id only.
        raise SourceNotAllowed("Objects in longrun's own bucket are reachable by upload id only.")
    if not rules.buckets:
        raise SourceNotAllowed(
            "gs:// sources are off on this deployment: its operator lists no source buckets "
            "(LONGRUN_SOURCE_BUCKETS). Upload the file or give an https:// URL."
        )
    if bucket not in rules.buckets:
        raise SourceNotAllowed(f"Bucket {bucket!r} is not one this deployment reads sources from.")


def parse_gs_uri(uri: str) -> GsObject:
    """`gs://bucket/object` → its parts, refusing every spelling Cloud Storage could read
    differently from how it is compared here (escapes, case, dot segments, look-alikes)."""
    if not uri.startswith("gs://"):
        raise SourceNotAllowed(f"{uri[:80]!r} is not a gs://bucket/object URI.")
    bucket, slash, name = uri[5:].partition("/")
    problem = bucket_problem(bucket) or (
        object_problem(name) if slash else "it names a bucket but no object"
    )
    if problem is not None:
        raise SourceNotAllowed(f"{uri[:80]!r} is not a gs://bucket/object URI: {problem}.")
    return GsObject(bucket, name)


def bucket_problem(bucket: str) -> str | None:
    """What makes `bucket` not a Cloud Storage bucket name as written, or None."""
    components = bucket.split(".")
    if not 3 <= len(bucket) <= (222 if len(components) > 1 else 63):
        return "a bucket name has 3 to 63 characters (222 with dots)"
    if not all(_BUCKET_COMPONENT.fullmatch(c) for c in components):
        return (
            "a bucket name is lowercase letters, digits, '-', '_' and '.', "
            "each dotted part starting and ending with a letter or digit"
        )
    if _DOTTED_DECIMAL.fullmatch(bucket):
        return "a bucket name cannot be an IP address"
    if bucket.startswith("goog") or _GOOGLE_LIKE.search(bucket):
        return "a bucket name cannot start with 'goog' or contain 'google'"
    return None


def object_problem(name: str) -> str | None:
    """What makes `name` an object name we will not pass on, or None."""
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return "the object name is not valid UTF-8"
    if not 1 <= size <= _OBJECT_MAX_BYTES:
        return f"an object name has 1 to {_OBJECT_MAX_BYTES} bytes"
    if name != name.strip() or any(unicodedata.category(c) == "Cc" for c in name):
        return "the object name has control characters or surrounding spaces"
    if any(c in name for c in "%?#"):
        return "the object name has '%', '?' or '#'"
    if any(segment in ("", ".", "..") for segment in name.split("/")):
        return "the object name has an empty, '.' or '..' path segment"
    if name.startswith(".well-known/acme-challenge/"):
        return "the object name is reserved"
    return None


def check_url_without_network(url: str, hosts_file: Path = HOSTS_FILE) -> str:
    """The URL's host as the resolver will read it, if nothing about it (scheme, credentials,
    address in any spelling, local name, /etc/hosts entry) is off limits."""
    try:
        parts = urlsplit(url)
        host, _ = parts.hostname, parts.port  # a bad port raises here, not later
    except ValueError:
        raise SourceNotAllowed(f"{url[:80]!r} is not a valid URL.") from None
    if parts.scheme != "https" or not host:
        raise SourceNotAllowed(f"{url[:80]!r} is not an https:// URL with a host.")
    if parts.username is not None or parts.password is not None:
        raise SourceNotAllowed("URLs may not carry credentials.")
    return check_host(host, hosts_file)


def check_host(host: str, hosts_file: Path = HOSTS_FILE) -> str:
    """`host` normalised (an IP address in its usual form, or an ASCII name), if allowed."""
    if ":" in host:
        return str(_checked(_ip_literal(host)))
    name = _ascii_name(host)
    address = _numeric_ipv4(name)
    if address is not None:
        return str(_checked(address))
    if "." not in name or name in _LOCAL_NAMES or name.endswith(_LOCAL_SUFFIXES):
        # A dot-less name is completed from the resolver's search domains: an internal name.
        raise SourceNotAllowed(f"{name} is a local or internal name.")
    for listed in hosts_file_addresses(name, hosts_file):
        check_address(listed)
    return name


def _ip_literal(host: str) -> IPAddress:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        raise SourceNotAllowed(f"{host[:80]!r} is not a valid address.") from None


def _ascii_name(host: str) -> str:
    """The name as getaddrinfo receives it: IDNA (Python's codec), lowercase, no final dot."""
    try:
        name = host.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise SourceNotAllowed(f"{host[:80]!r} is not a valid host name.") from None
    name = name.removesuffix(".")
    if not _HOST_NAME.fullmatch(name):
        raise SourceNotAllowed(f"{host[:80]!r} is not a valid host name.")
    return name


def _numeric_ipv4(name: str) -> ipaddress.IPv4Address | None:
    """The address a numeric spelling stands for (`127.1`, `0x7f000001`, `017700000001`): the
    resolver reads these with inet_aton before it would ever ask DNS."""
    try:
        return ipaddress.IPv4Address(socket.inet_aton(name))
    except OSError:
        return None


def _checked(address: IPAddress) -> IPAddress:
    check_address(address)
    return address


def hosts_file_addresses(name: str, hosts_file: Path = HOSTS_FILE) -> list[IPAddress]:
    """The addresses a hosts file gives `name` (the resolver reads it before DNS)."""
    try:
        lines = hosts_file.read_text(errors="replace").splitlines()
    except OSError:
        return []
    found = []
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) > 1 and name in (f.lower().rstrip(".") for f in fields[1:]):
            try:
                found.append(ipaddress.ip_address(fields[0].split("%", 1)[0]))
            except ValueError:
                continue
    return found


def check_address(address: IPAddress) -> None:
    """Refuse every address that is not plainly on the public internet."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in _METADATA or not address.is_global or address.is_multicast:
        raise SourceNotAllowed(f"{address} is not a public internet address.")
