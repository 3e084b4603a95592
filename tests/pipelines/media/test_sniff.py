"""Media is told from other files by its first bytes."""

from __future__ import annotations

import pytest

from pipelines.media.sniff import looks_like_text, sniff_media


@pytest.mark.parametrize(
    ("head", "content_type"),
    [
        (b"RIFF\x24\x00\x00\x00WAVEfmt ", "audio/wav"),
        (b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00", "video/mp4"),
        (b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00", "audio/mp4"),
        (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
        (b"\xff\xfb\x90\x64\x00\x00", "audio/mpeg"),
        (b"\x1aE\xdf\xa3\x9fB\x86\x81\x01", "video/x-matroska"),
        (b"OggS\x00\x02\x00\x00", "audio/ogg"),
        (b"fLaC\x00\x00\x00\x22", "audio/flac"),
        (b"\x00\x00\x01\xba\x44\x00\x04\x00\x04\x01", "video/mpeg"),
        (b"\x00\x00\x01\xb3\x14\x00\xf0\x13", "video/mpeg"),
        (b"RIFF\x24\x00\x00\x00AVI LIST", "video/x-msvideo"),
        (b"\x0b\x77\x3b\x18\x40", "audio/ac3"),
    ],
)
def test_media_is_recognised(head: bytes, content_type: str) -> None:
    sniffed = sniff_media(head)

    assert sniffed is not None
    assert sniffed.content_type == content_type


@pytest.mark.parametrize(
    "head", [b"", b"hello, this is text", b"<!doctype html><html>", b'{"json": true}', b"%PDF-1.7"]
)
def test_other_files_are_not_media(head: bytes) -> None:
    assert sniff_media(head) is None


def test_chat_logs_must_be_text() -> None:
    assert looks_like_text(b'{"timestamp_seconds": 1, "user": "a", "text": "hi \xc3\xa9"}')
    assert looks_like_text("cut in the middle é".encode()[:-1])
    assert not looks_like_text(b"\x00\x01\x02binary")
    assert not looks_like_text(b"\xff\xfe\xfa not utf-8 at all")
