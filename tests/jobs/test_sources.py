"""Which sources a job may name: uploads, gs:// objects and public https:// URLs only."""

from __future__ import annotations

import pytest

from jobs.contract.sources import SourceKind, SourceNotAllowed, source_kind


@pytest.mark.parametrize(
    ("source", "kind"),
    [
        ("https://example.com/vod.mp4", SourceKind.HTTPS),
        ("https://8.8.8.8/a.wav", SourceKind.HTTPS),
        ("gs://bucket/path/to/file.mp4", SourceKind.GCS),
        ("Ab3dEfGh1jKlMn0pQr5s", SourceKind.UPLOAD),
    ],
)
def test_allowed_sources(source: str, kind: SourceKind) -> None:
    assert source_kind(source) == kind


@pytest.mark.parametrize(
    "source",
    [
        "https://127.0.0.1/x.mp4",
        "https://10.0.0.8/x.mp4",
        "https://10.255.255.255/x.mp4",
        "https://169.254.169.254/computeMetadata/v1/",
        "https://192.168.1.1/x",
        "https://172.16.0.1/x",
        "https://100.64.0.1/x",
        "https://0.0.0.0/x",
        "https://[::1]/x",
        "https://[fd00:ec2::254]/x",
        "https://[::ffff:127.0.0.1]/x",
        "https://localhost/x",
        "https://metadata.google.internal/x",
        "https://service.internal/x",
        "https://user:secret@example.com/x",
        "http://example.com/x.mp4",
        "file:///etc/passwd",
        "ftp://example.com/x",
        "gs://bucket-only",
        "../../etc/passwd",
        "uploads/abc",
    ],
)
def test_refused_sources(source: str) -> None:
    with pytest.raises(SourceNotAllowed) as refused:
        source_kind(source)

    assert refused.value.code == "SOURCE_NOT_ALLOWED"
