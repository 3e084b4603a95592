"""Decoding that carries on past damage, and says where the damage was.

Real recordings hold corrupt stretches (a bad sector, a broken download, a muxer's bug). FFmpeg's
command line logs each packet it cannot decode and goes on; PyAV's `container.decode` raises at
the first, which would cost a whole analysis for a second of damage. Here each packet is decoded
on its own: one the decoder refuses is skipped, and the time it covers is noted as undecodable.
Demuxers skip damage silently (a dropped Ogg page, an MPEG pack resynchronised), which shows
only as sound starting later than the sound before it ended: such holes are noted too (in
pictures a late frame may be a still scene, so only refused packets count there).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import av
from av.audio.frame import AudioFrame
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

from pipelines.media.models import Span

# Sound starting this much later than the sound before it ended lost something in between.
AUDIO_HOLE_SECONDS = 0.1
# Damage this close to the damage before it is one stretch.
JOIN_SECONDS = 0.5
# Pictures after a refused packet are built on a broken one until the next keyframe; a stream
# with no keyframes to speak of (intra refresh) heals over time, so stop waiting after this.
MAX_BROKEN_SECONDS = 10.0

Frame = TypeVar("Frame", AudioFrame, VideoFrame)
# What decoders answer to bytes that are not what they should be (AVERROR_INVALIDDATA), or use
# a feature no decoder here has (AVERROR_PATCHWELCOME: garbage often reads as one).
DAMAGED = (av.error.InvalidDataError, av.error.PatchWelcomeError)


@dataclass
class Damage:
    """Where one stream would not decode: stretches in seconds from the stream's first frame
    (the analyses' time line), and how many packets were refused."""

    origin: float = 0.0
    stretches: list[Span] = field(default_factory=list)
    packets: int = 0

    def note(self, start: float, end: float) -> None:
        """Add a damaged stretch, joined with those it touches (decoders reorder frames, so
        damage is not always noted in time order)."""
        new = Span(start=max(0.0, start), end=max(0.0, start, end))
        apart = []
        for old in self.stretches:
            if old.start <= new.end + JOIN_SECONDS and new.start <= old.end + JOIN_SECONDS:
                new = Span(start=min(old.start, new.start), end=max(old.end, new.end))
            else:
                apart.append(old)
        self.stretches = sorted([*apart, new], key=lambda s: s.start)

    def within(self, span: Span) -> list[Span]:
        """The damage inside `span`, in order: a span's lead-in belongs to the span before."""
        inside = []
        for stretch in self.stretches:
            start, end = max(stretch.start, span.start), min(stretch.end, span.end)
            if end > start:
                inside.append(Span(start=round(start, 3), end=round(end, 3)))
        return inside


def joined(stretches: Iterable[Span]) -> list[Span]:
    """Damaged stretches from several spans as one list: in order, touching ones joined (damage
    across a boundary between spans is one stretch)."""
    damage = Damage()
    for stretch in stretches:
        damage.note(stretch.start, stretch.end)
    return damage.stretches


def audio_frames(
    container: InputContainer, stream: AudioStream, damage: Damage
) -> Iterator[AudioFrame]:
    """The stream's frames from wherever the container stands, skipping damage (noted in
    `damage`), holes in the sound's timestamps included."""
    heard_until: float | None = None
    for frame in _frames(container, stream, damage, AudioFrame):
        if frame.time is not None and frame.sample_rate:
            at = frame.time - damage.origin
            if heard_until is not None and at - heard_until > AUDIO_HOLE_SECONDS:
                damage.note(heard_until, at)
            heard_until = at + frame.samples / frame.sample_rate
        yield frame


def video_frames(
    container: InputContainer, stream: VideoStream, damage: Damage
) -> Iterator[VideoFrame]:
    """The stream's frames from wherever the container stands, skipping refused packets and the
    frames built on them up to the next keyframe (decoders hide the loss by reusing the picture
    before it, which reads as a still scene and then a jump); all noted in `damage`."""
    refused, broken_at = 0, None
    step = 1.0 / float(stream.average_rate) if stream.average_rate else 0.04
    for frame in _frames(container, stream, damage, VideoFrame):
        at = None if frame.time is None else frame.time - damage.origin
        if damage.packets > refused:
            refused = damage.packets
            broken_at = at if broken_at is None else broken_at
        broken = at is not None and broken_at is not None and at - broken_at < MAX_BROKEN_SECONDS
        if broken and at is not None and not frame.key_frame:
            damage.note(at, at + step)
            continue
        broken_at = None
        yield frame


def decoded(packet: Packet[Stream]) -> list[object] | None:
    """What a packet decodes to (often nothing yet: decoders hold a few frames back), or None
    if the decoder refuses it as damaged. Any other refusal (a picture over the size limit, out
    of memory) is no damage and goes on up."""
    try:
        return list(packet.decode())
    except DAMAGED:
        return None


def _frames(
    container: InputContainer, stream: Stream, damage: Damage, kind: type[Frame]
) -> Iterator[Frame]:
    untimed = _Stamper(stream)
    # The last packet of a stream is an empty one that drains the decoder's held-back frames.
    for packet in container.demux(stream):
        frames = decoded(packet)
        if frames is None:
            damage.packets += 1
            start, end = _packet_stretch(packet, stream)
            if start is not None:
                damage.note(start - damage.origin, end - damage.origin)
            continue
        for frame in frames:
            if isinstance(frame, kind):
                untimed.stamp(frame)
                yield frame


class _Stamper:
    """Gives frames without a timestamp (some MPEG program streams carry none at all) the time
    the frame before them ended, as players show them: one after another."""

    def __init__(self, stream: Stream) -> None:
        self.time_base = stream.time_base
        self.next_pts: int | None = None

    def stamp(self, frame: AudioFrame | VideoFrame) -> None:
        if frame.pts is None and self.time_base is not None:
            frame.pts = self.next_pts or 0
            frame.time_base = self.time_base
        if frame.pts is not None and frame.duration:
            self.next_pts = frame.pts + frame.duration


def _packet_stretch(packet: Packet[Stream], stream: Stream) -> tuple[float | None, float]:
    """The time a packet covers (stream time, seconds); None if it carries no timestamp."""
    stamp = packet.pts if packet.pts is not None else packet.dts
    if stamp is None or packet.time_base is None:
        return None, 0.0
    start = float(stamp * packet.time_base)
    if packet.duration:
        return start, start + float(packet.duration * packet.time_base)
    rate = stream.average_rate if isinstance(stream, VideoStream) else None
    return start, start + (1.0 / float(rate) if rate else 0.0)
