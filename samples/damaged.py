"""Recordings as they come from the world rather than from an encoder: a stretch of bytes
overwritten in the middle (a bad sector, a broken download), a first sound packet that starts
mid-frame (a recorder that began between two frames), and an Ogg file with a Skeleton stream in
front (what ffmpeg2theora and other Xiph tools write: a data stream no decoder reads).

Both take a file and write a changed copy, so tests and benchmarks plant damage in generated
and real recordings alike, deterministically.
"""

from __future__ import annotations

import random
import struct
from collections.abc import Iterator
from pathlib import Path

import av


def overwrite_middle(source: Path, target: Path, *, at: float, length: int, seed: int = 15) -> int:
    """Copy `source` to `target` with `length` bytes of noise from `at` (a share of the file,
    0..1); the byte offset where the damage starts."""
    data = bytearray(source.read_bytes())
    start = min(int(len(data) * at), max(0, len(data) - length))
    noise = random.Random(seed).randbytes(length)
    data[start : start + length] = noise[: len(data) - start]
    target.write_bytes(bytes(data))
    return start


def sound_cut_in(source: Path, target: Path, *, drop_bytes: int = 200) -> Path:
    """Copy a recording (into a container that keeps every packet's timestamp: Matroska, MP4),
    its streams as they are, but for its first packet of sound (after any encoder priming),
    whose first `drop_bytes` are gone: the packet starts in the middle of a frame."""
    with av.open(str(source)) as original, av.open(str(target), "w") as copy:
        streams = {s.index: copy.add_stream_from_template(s) for s in original.streams}
        cut = False
        for packet in original.demux():
            if not packet.size:
                continue  # the empty packet that ends each stream
            out = streams[packet.stream.index]
            if packet.stream.type == "audio" and not cut and (packet.pts or 0) >= 0:
                cut, whole = True, packet
                packet = av.Packet(bytes(whole)[drop_bytes:])
                packet.pts, packet.dts, packet.time_base = whole.pts, whole.dts, whole.time_base
            packet.stream = out
            copy.mux(packet)
    return target


def with_skeleton(source: Path, target: Path) -> Path:
    """Copy an Ogg file with an Ogg Skeleton 3.0 stream added: its head page first, its bone
    (naming the first stream) and its end page after the first stream's head page."""
    pages = list(_pages(source.read_bytes()))
    serial = struct.unpack_from("<I", pages[0], 14)[0]
    skeleton = 0x5EE1E7
    fishead = b"fishead\x00" + struct.pack("<HHqqqq", 3, 0, 0, 1000, 0, 1000) + bytes(20)
    fisbone = (
        b"fisbone\x00"
        + struct.pack("<IIIqqqIB3x", 44, serial, 3, 48000, 1, 0, 2, 0)
        + b"Content-Type: audio/ogg\r\n"
    )
    head = _page(skeleton, 0, fishead, flags=0x02)
    bone = _page(skeleton, 1, fisbone)
    end = _page(skeleton, 2, b"", flags=0x04)
    target.write_bytes(head + pages[0] + bone + end + b"".join(pages[1:]))
    return target


def _pages(data: bytes) -> Iterator[bytes]:
    """The pages of an Ogg file, as they are."""
    offset = 0
    while offset < len(data):
        if data[offset : offset + 4] != b"OggS":
            raise ValueError(f"not an Ogg page at byte {offset}")
        count = data[offset + 26]
        body = sum(data[offset + 27 : offset + 27 + count])
        size = 27 + count + body
        yield data[offset : offset + size]
        offset += size


def _page(serial: int, sequence: int, packet: bytes, *, flags: int = 0) -> bytes:
    """One Ogg page holding one whole packet (under 255 * 255 bytes)."""
    lacing = [255] * (len(packet) // 255) + [len(packet) % 255]
    header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, 0, serial, sequence, 0, len(lacing))
    page = bytearray(header + bytes(lacing) + packet)
    struct.pack_into("<I", page, 22, _crc(bytes(page)))
    return bytes(page)


def _crc(data: bytes) -> int:
    """Ogg's page checksum: CRC-32 with polynomial 0x04C11DB7, not reflected, starting at 0."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
            crc &= 0xFFFFFFFF
    return crc
