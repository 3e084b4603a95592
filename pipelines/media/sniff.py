"""Telling media from everything else by its first bytes, before anyone tries to decode it.

A file's name and declared content type are what a sender says; its magic numbers are what it
is. Only formats FFmpeg reads are listed; anything else is refused before it costs a decode.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

HEAD_BYTES = 512


@dataclass(frozen=True)
class Sniffed:
    content_type: str
    extension: str


def sniff_media(head: bytes) -> Sniffed | None:
    """The container a file starts like, or None if it does not look like audio or video."""
    for test, sniffed in _SIGNATURES:
        if test(head):
            return sniffed
    return None


def looks_like_text(head: bytes) -> bool:
    """Chat logs are text: no NUL bytes, and valid UTF-8 (allowing a cut last character)."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3
    return True


def _mp3_frame(head: bytes) -> bool:
    return len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0


def _mpeg_ts(head: bytes) -> bool:
    return len(head) > 376 and head[0] == head[188] == head[376] == 0x47


def _blu_ray_ts(head: bytes) -> bool:
    """MPEG-TS in 192-byte packets, each after a 4-byte time code (.m2ts, .mts)."""
    return len(head) > 388 and head[4] == head[196] == head[388] == 0x47


_SIGNATURES: list[tuple[Callable[[bytes], bool], Sniffed]] = [
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"WAVE", Sniffed("audio/wav", ".wav")),
    (lambda h: h[:4] == b"RIFF" and h[8:12] == b"AVI ", Sniffed("video/x-msvideo", ".avi")),
    (lambda h: h[4:8] == b"ftyp" and h[8:11] == b"M4A", Sniffed("audio/mp4", ".m4a")),
    (lambda h: h[4:8] == b"ftyp" and h[8:10] == b"qt", Sniffed("video/quicktime", ".mov")),
    (lambda h: h[4:8] == b"ftyp", Sniffed("video/mp4", ".mp4")),
    (lambda h: h[4:8] in (b"moov", b"mdat", b"wide", b"free"), Sniffed("video/quicktime", ".mov")),
    (lambda h: h[:4] == b"\x1aE\xdf\xa3", Sniffed("video/x-matroska", ".mkv")),
    (lambda h: h[:4] == b"OggS", Sniffed("audio/ogg", ".ogg")),
    (lambda h: h[:4] == b"fLaC", Sniffed("audio/flac", ".flac")),
    (lambda h: h[:3] == b"FLV", Sniffed("video/x-flv", ".flv")),
    (lambda h: h[:4] == b"FORM" and h[8:12] in (b"AIFF", b"AIFC"), Sniffed("audio/aiff", ".aiff")),
    (lambda h: h[:4] == b"\x30\x26\xb2\x75", Sniffed("video/x-ms-asf", ".wmv")),
    (lambda h: h[:4] == b"caff", Sniffed("audio/x-caf", ".caf")),
    (lambda h: h[:3] == b"ID3", Sniffed("audio/mpeg", ".mp3")),
    (lambda h: len(h) > 1 and h[0] == 0xFF and h[1] & 0xF6 == 0xF0, Sniffed("audio/aac", ".aac")),
    (_mp3_frame, Sniffed("audio/mpeg", ".mp3")),
    (_mpeg_ts, Sniffed("video/mp2t", ".ts")),
    (_blu_ray_ts, Sniffed("video/mp2t", ".m2ts")),
    # MPEG program streams (.mpg, DVD .vob) start with a pack header; bare MPEG-1/2 video with
    # a sequence header.
    (lambda h: h[:4] == b"\x00\x00\x01\xba", Sniffed("video/mpeg", ".mpg")),
    (lambda h: h[:4] == b"\x00\x00\x01\xb3", Sniffed("video/mpeg", ".m2v")),
    (lambda h: h[:4] in (b"RF64", b"BW64") and h[8:12] == b"WAVE", Sniffed("audio/wav", ".wav")),
    (lambda h: h[:4] == b".snd", Sniffed("audio/basic", ".au")),
    (lambda h: h[:5] == b"#!AMR", Sniffed("audio/amr", ".amr")),
    (lambda h: h[:2] == b"\x0b\x77", Sniffed("audio/ac3", ".ac3")),
    (lambda h: h[:4] == b"wvpk", Sniffed("audio/x-wavpack", ".wv")),
    (lambda h: h[:4] == b"MAC ", Sniffed("audio/x-ape", ".ape")),
    (lambda h: h[:4] == b"MPCK", Sniffed("audio/x-musepack", ".mpc")),
    (lambda h: h[:4] == b".RMF", Sniffed("application/vnd.rn-realmedia", ".rm")),
    (lambda h: h[:4] == b"\x06\x0e\x2b\x34", Sniffed("application/mxf", ".mxf")),
    (lambda h: h[:4] == b"DKIF", Sniffed("video/x-ivf", ".ivf")),
    (lambda h: h[:20] == b"Creative Voice File\x1a", Sniffed("audio/x-voc", ".voc")),
]
