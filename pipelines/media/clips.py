"""Highlight clips: each highlight as a short file of its own, with a second of lead-in.

Where the codecs fit a container browsers play (H.264 with AAC or MP3 in MP4, VP8/VP9/AV1 with
Opus or Vorbis in WebM; for sound alone AAC in M4A, MP3, Opus or Vorbis in Ogg), the packets are
copied as they are from the keyframe at or before the lead-in: nothing is decoded, nothing lost,
and a clip costs about the time its bytes take to arrive. Anything else (and a stream whose last
keyframe lies too far back) is re-encoded to H.264/AAC in MP4 (AAC in M4A for sound alone),
starting at the lead-in exactly. Either way only the clip's stretch of the source is read.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import av
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.stream import Stream
from av.video.stream import VideoStream

from pipelines.media.clip_streams import StreamCut, copier, encoder
from pipelines.media.models import Span
from pipelines.media.probe import (
    MediaSource,
    Progress,
    first_audio,
    first_video,
    open_media,
    paced,
    stream_start,
    unsupported,
)

LEAD_SECONDS = 1.0
# A copy starts at the keyframe before the lead-in; one further back than this makes the clip
# start too early to be that highlight's clip, so the picture is re-encoded instead.
MAX_EXTRA_LEAD_SECONDS = 4.0
# Packets held from the keyframe before the lead-in to the lead-in: a minute of 60 fps video
# and its sound (a keyframe further back is not worth waiting for).
_MAX_HELD_PACKETS = 8192
# How far before the lead-in to seek, in turn, until the demuxer lands at or before it.
_SEEK_BACK_SECONDS = (0.0, 2.0, 10.0, 30.0)
# Times within this of each other are the same (timestamps are rounded).
_SLACK = 1e-3

Method = Literal["copy", "encode"]


@dataclass(frozen=True)
class ClipFormat:
    """An output container: what it is called and served as, what it takes as it is, and the
    sound encoder used when the source's sound does not fit."""

    suffix: str
    format: str
    content_type: str
    copies_video: frozenset[str]
    copies_audio: frozenset[str]
    audio_encoder: str


MP4 = ClipFormat(".mp4", "mp4", "video/mp4", frozenset({"h264"}), frozenset({"aac", "mp3"}), "aac")
WEBM = ClipFormat(
    ".webm",
    "webm",
    "video/webm",
    frozenset({"vp8", "vp9", "av1"}),
    frozenset({"opus", "vorbis"}),
    "libopus",
)
M4A = ClipFormat(".m4a", "mp4", "audio/mp4", frozenset(), frozenset({"aac"}), "aac")
MP3 = ClipFormat(".mp3", "mp3", "audio/mpeg", frozenset(), frozenset({"mp3"}), "libmp3lame")
OGG = ClipFormat(".ogg", "ogg", "audio/ogg", frozenset(), frozenset({"opus", "vorbis"}), "libopus")
_VIDEO_FORMATS = (MP4, WEBM)
_AUDIO_FORMATS = (M4A, MP3, OGG)


def clip_format(video_codec: str | None, audio_codec: str | None, copy_video: bool) -> ClipFormat:
    """The container for a clip: the one that takes the picture as it is (when it is copied),
    else MP4 for a re-encoded picture; for sound alone, the one that takes the sound as it is."""
    if video_codec is not None:
        fits = (f for f in _VIDEO_FORMATS if copy_video and video_codec in f.copies_video)
        return next(fits, MP4)
    return next((f for f in _AUDIO_FORMATS if audio_codec in f.copies_audio), M4A)


@dataclass(frozen=True)
class Clip:
    """A clip written to `path`: its times are the recording's (its first frame's and its end);
    `method` says how its picture (or sound, if it has none) was made: copied from a keyframe,
    or encoded from the lead-in."""

    path: Path
    content_type: str
    start: float
    end: float
    method: Method
    skipped_packets: int


def cut_clip(
    source: MediaSource,
    highlight: Span,
    directory: Path,
    stem: str,
    *,
    lead_seconds: float = LEAD_SECONDS,
    progress: Progress,
) -> Clip:
    """Write `highlight`, with `lead_seconds` before it, as `directory/stem` plus a suffix."""
    report = paced(progress)
    with open_media(source) as container:
        video, audio = first_video(container), first_audio(container)
        reference = video or audio
        if reference is None:
            raise unsupported("it has no audio or video stream")
        origin = stream_start(reference)
        want = origin + max(0.0, highlight.start - lead_seconds)
        stop = origin + highlight.end
        streams: list[Stream] = [s for s in (video, audio) if s is not None]
        held, first, packets = _starting_packets(container, streams, reference, want)
        copy_video = video is not None and first >= want - MAX_EXTRA_LEAD_SECONDS
        chosen = clip_format(_codec(video), _codec(audio), copy_video)
        copy_video = copy_video and _codec(video) in chosen.copies_video
        copy_sound = video is None and _codec(audio) in chosen.copies_audio
        start = first if copy_video or copy_sound else want
        path = directory / f"{stem}{chosen.suffix}"
        cuts = _write(
            path, chosen, video, audio, copy_video, (start, stop), _chain(held, packets), report
        )
    method: Method = "copy" if cuts[0].copied else "encode"
    report(1.0)
    return Clip(
        path=path,
        content_type=chosen.content_type,
        start=start - origin,
        end=stop - origin,
        method=method,
        skipped_packets=sum(cut.skipped for cut in cuts),
    )


def _codec(stream: Stream | None) -> str | None:
    return None if stream is None else stream.codec.canonical_name


def _seek(container: InputContainer, stream: Stream, seconds: float) -> None:
    """To the keyframe at or before `seconds` (backward is PyAV's default)."""
    if stream.time_base is not None:
        container.seek(max(0, math.floor(seconds / stream.time_base)), stream=stream)


def _packets(container: InputContainer, streams: list[Stream]) -> Iterator[Packet[Stream]]:
    """The streams' packets in file order, without the empty ones that end a demux."""
    for packet in container.demux(streams):
        if packet.size and packet.time_base is not None and _time(packet) is not None:
            yield packet


def _time(packet: Packet[Stream]) -> float | None:
    stamp = packet.pts if packet.pts is not None else packet.dts
    return None if stamp is None or packet.time_base is None else float(stamp * packet.time_base)


def _starting_packets(
    container: InputContainer, streams: list[Stream], reference: Stream, want: float
) -> tuple[list[Packet[Stream]], float, Iterator[Packet[Stream]]]:
    """Seek to the reference stream's last start point (keyframe) at or before `want`; the
    packets from there, its time, and the packets after. A demuxer that seeks by guesswork
    (MPEG-TS, say) may land after `want`: then it seeks again, further back."""
    for back in _SEEK_BACK_SECONDS:
        _seek(container, reference, want - back)
        packets = _packets(container, streams)
        held, first = _from_last_start(packets, reference, want)
        if first <= want + _SLACK or want - back <= 0:
            break
    return held, first, packets


def _from_last_start(
    packets: Iterator[Packet[Stream]], reference: Stream, want: float
) -> tuple[list[Packet[Stream]], float]:
    """Read on until past `want`, holding the packets from the reference stream's last start
    point at or before it (and other streams' packets from its time on); they and its time."""
    held: list[Packet[Stream]] = []
    first: float | None = None
    for packet in packets:
        time = _time(packet)
        assert time is not None
        if packet.stream is reference:
            starts = packet.is_keyframe or reference.type == "audio"
            if starts and (first is None or time <= want + _SLACK):
                first = time
                held = [p for p in held if p.stream is not reference and (_time(p) or 0) >= time]
            elif first is None:
                continue  # pictures before any keyframe cannot be shown
            if time > want + _SLACK:
                held.append(packet)
                return held, first
        if len(held) >= _MAX_HELD_PACKETS:
            raise unsupported("no keyframe could be found near the highlight")
        held.append(packet)
    if first is None:
        raise unsupported("nothing in the highlight's stretch could be read")
    return held, first


def _chain(held: list[Packet[Stream]], rest: Iterator[Packet[Stream]]) -> Iterator[Packet[Stream]]:
    yield from held
    yield from rest


def _write(
    path: Path,
    chosen: ClipFormat,
    video: VideoStream | None,
    audio: AudioStream | None,
    copy_video: bool,
    times: tuple[float, float],
    packets: Iterator[Packet[Stream]],
    report: Progress,
) -> list[StreamCut]:
    """Copy or encode each stream's packets from `start` to `stop` into a new file at `path`."""
    start, stop = times
    options = {"movflags": "+faststart"} if chosen.format == "mp4" else {}
    with av.open(str(path), "w", format=chosen.format, container_options=options) as output:
        cuts: dict[int, StreamCut] = {}
        if video is not None:
            make = copier if copy_video else encoder
            cuts[video.index] = make(output, video, start, stop)
        if audio is not None:
            cuts[audio.index] = _audio_cut(output, audio, chosen, start, stop)
        for packet in packets:
            cuts[packet.stream.index].take(packet)
            time = _time(packet) or start
            report((time - start) / max(stop - start, 1e-6))
            if all(c.done for c in cuts.values()):
                break
        for each in cuts.values():
            each.finish()
    made = list(cuts.values())
    if not made[0].written:  # the picture, or the sound of a recording without one
        raise unsupported("nothing in the highlight's stretch could be decoded")
    return made


def _audio_cut(
    output: OutputContainer, audio: AudioStream, chosen: ClipFormat, start: float, stop: float
) -> StreamCut:
    if audio.codec.canonical_name in chosen.copies_audio:
        return copier(output, audio, start, stop)
    return encoder(output, audio, start, stop, audio_codec=chosen.audio_encoder)
