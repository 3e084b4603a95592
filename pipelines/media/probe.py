"""What a media file holds, and whether it can be read to the end.

It also holds what every reader of media shares. Every analysis opens media through
`open_media`, so an FFmpeg failure anywhere becomes one permanent UNSUPPORTED_MEDIA error: the
file is what it is, and a retry would fail the same way. `paced` keeps progress reports sparse.

A source is a local file or a seekable binary file object (a ranged reader of a Cloud Storage
object, say): FFmpeg then reads only the bytes it asks for, so a span of a recording costs about
its share of the file. An error the file object raises while FFmpeg reads (a network error) comes
out as itself, never as UNSUPPORTED_MEDIA.
"""

from __future__ import annotations

import io
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import av
from av.audio.stream import AudioStream
from av.container import InputContainer
from av.packet import Packet
from av.stream import Disposition, Stream
from av.video.stream import VideoStream

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.decoding import decoded
from pipelines.media.models import AudioInfo, MediaInfo, StreamInfo, VideoInfo
from processor.stage import PermanentError

UNSUPPORTED = "UNSUPPORTED_MEDIA"
TOO_LONG = "MEDIA_TOO_LONG"
# The fewest bytes a second of any real recording takes (64 bit/s, a tenth of the thinnest
# speech codecs): a file claiming more seconds than this allows is lying about its length.
MIN_BYTES_PER_SECOND = 8.0
# Consecutive frames this far apart are not a recording with a pause but lying timestamps.
MAX_GAP_SECONDS = 3600.0
# Demuxers FFmpeg offers for text art and still images: they "open" but are not recordings.
_NOT_RECORDINGS = {"tty", "bin", "xbin", "adf", "idf", "image2"}
# The largest picture decoded (8K: 8192 x 4320). FFmpeg accepts up to about 16k x 16k, a
# gigabyte a frame, from a picture that compresses to kilobytes.
MAX_PIXELS = 8192 * 4320
_DECODER_LIMITS = {"max_pixels": str(MAX_PIXELS)}
# Video decoders hide damage by reusing earlier pictures, and say nothing: told to stop at it,
# they refuse the damaged packet instead, which the analyses then skip and report.
_VIDEO_DECODING = {**_DECODER_LIMITS, "err_detect": "explode"}
# av.open takes decoder options per stream index; entries past the last stream are unused.
_LIMITED_STREAMS = 1024
# How far from the start packets are read to prove each stream decodes (a damaged packet or
# two at the start is skipped, as players skip it).
_HEAD_PACKETS = 1024
# How much of its declared length a file may lack before it counts as truncated.
_TAIL_SLACK_SECONDS = 1.0
_TAIL_SLACK_FRACTION = 0.01
_TAIL_LOOKBACK_SECONDS = 2.0

Progress = Callable[[float], None]
# A local file, or a seekable binary file object positioned anywhere.
MediaSource = Path | IO[bytes]


def unsupported(reason: str) -> PermanentError:
    return PermanentError(f"Not a readable audio or video file: {reason}.", code=UNSUPPORTED)


def too_long(seconds: float, max_seconds: float) -> PermanentError:
    return PermanentError(
        f"The recording lasts {seconds:.0f} s; at most {max_seconds:.0f} s can be analysed.",
        code=TOO_LONG,
    )


def check_length(seconds: float, max_seconds: float = MEDIA_SECONDS_CEILING) -> None:
    """Refuse a recording longer than `max_seconds` (and than the ceiling, whatever it says)."""
    limit = min(max_seconds, MEDIA_SECONDS_CEILING)
    if seconds > limit:
        raise too_long(seconds, limit)


def grid_cells(duration_seconds: float, cell_seconds: float) -> int:
    """How many cells a grid over the recording needs; never more than the ceiling allows."""
    check_length(duration_seconds)
    return max(1, math.ceil(duration_seconds / cell_seconds))


@dataclass
class TimeCheck:
    """Checks frame times as an analysis reads them: headers may lie, so the frames decoded
    are what bound the work, and a jump of hours between frames is a lie too."""

    max_seconds: float = MEDIA_SECONDS_CEILING
    last: float | None = None

    def frame_at(self, seconds: float) -> None:
        check_length(seconds, self.max_seconds)
        if self.last is not None and seconds - self.last > MAX_GAP_SECONDS:
            raise unsupported(f"its timestamps jump from {self.last:.0f} s to {seconds:.0f} s")
        self.last = seconds if self.last is None else max(self.last, seconds)


def source_size(source: MediaSource) -> int:
    """The size of a source in bytes; 0 for a missing file. A file object is sought to its end
    (a ranged reader knows its object's size without reading it)."""
    if isinstance(source, Path):
        return source.stat().st_size if source.is_file() else 0
    return source.seek(0, io.SEEK_END)


def read_head(source: MediaSource, size: int) -> bytes:
    """The first `size` bytes of a source."""
    if isinstance(source, Path):
        with source.open("rb") as file:
            return file.read(size)
    source.seek(0)
    return source.read(size)


@contextmanager
def open_media(source: MediaSource) -> Iterator[InputContainer]:
    """Open a media file or file object; an FFmpeg error, now or while reading it, is
    UNSUPPORTED_MEDIA."""
    if source_size(source) == 0:
        raise unsupported("the file is missing or empty")
    if not isinstance(source, Path):
        source.seek(0)  # FFmpeg reads from wherever the file object stands.
    try:
        with _open(source) as container:
            if container.format.name in _NOT_RECORDINGS or container.format.name.endswith("_pipe"):
                raise unsupported(f"{container.format.name} is not a recording format")
            for stream in container.streams.video:
                stream.codec_context.options = dict(_VIDEO_DECODING)
            yield container
    except av.FFmpegError as error:
        raise unsupported(error.strerror or type(error).__name__) from error


def _open(source: MediaSource) -> InputContainer:
    """av.open with the picture-size limit applied while FFmpeg finds the streams' parameters
    (which decodes a few frames). Formats that only show their streams as their packets come
    (MPEG program streams) take no per-stream options: those open without, and the limit holds
    from the first frame the analyses decode (set on their decoders once open)."""
    opened = str(source) if isinstance(source, Path) else source
    # PyAV's stubs say list[str]; it takes (and needs) one dict of options per stream.
    limits: Any = [_DECODER_LIMITS] * _LIMITED_STREAMS
    try:
        return av.open(opened, "r", metadata_errors="replace", stream_options=limits)
    except ValueError as error:
        if isinstance(error, av.FFmpegError):
            raise
        if not isinstance(source, Path):
            source.seek(0)
        return av.open(opened, "r", metadata_errors="replace")


def first_audio(container: InputContainer) -> AudioStream | None:
    return container.streams.audio[0] if container.streams.audio else None


def first_video(container: InputContainer) -> VideoStream | None:
    """The first video stream that moves: cover art in a music file is not a video."""
    for stream in container.streams.video:
        if not stream.disposition & Disposition.attached_pic:
            return stream
    return None


def stream_seconds(stream: Stream) -> float | None:
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def stream_start(stream: Stream) -> float:
    """When the stream's first frame is stamped; the analyses count time from there."""
    if stream.start_time is None or stream.time_base is None:
        return 0.0
    return float(stream.start_time * stream.time_base)


def container_seconds(container: InputContainer) -> float | None:
    """The declared length: the container's, else its longest stream's."""
    if container.duration is not None and container.duration > 0:
        return container.duration / av.time_base
    lengths = [s for s in map(stream_seconds, container.streams) if s is not None]
    return max(lengths, default=None)


def probe_media(source: MediaSource, *, max_seconds: float = MEDIA_SECONDS_CEILING) -> MediaInfo:
    """Describe a media file, after checking that its streams decode at their start and reach
    its end, and that its length is one its bytes can hold and the analyses may take on.

    A stream that decodes nothing in its first packets is left out (with a warning) if another
    one decodes; data, subtitle and attachment streams are listed and otherwise ignored."""
    size = source_size(source)
    if size == 0:
        raise unsupported("the file is missing or empty")
    # Read before FFmpeg opens it: a file object has one position, and FFmpeg keeps its own.
    _check_riff_size(read_head(source, 12), size)
    with open_media(source) as container:
        audio, video = first_audio(container), first_video(container)
        wanted = [s for s in (audio, video) if s is not None]
        if not wanted:
            raise unsupported("it has neither an audio nor a video stream")
        if video is not None:
            _check_picture(_video_info(video))
        declared = container_seconds(container)
        if declared is not None:
            _check_claim(size, declared, max_seconds)
        reach = _Reach()
        readable = _decoding_at_head(container, wanted, reach)
        if declared is None:
            # No header gives the length (a short MPEG program stream): the packets do.
            for packet in container.demux():
                reach.add(packet)
            declared = round(reach.seconds - container_origin(container), 6)
            _check_claim(size, declared, max_seconds)
        else:
            _check_tail(container, declared)
        return _describe(container, readable, declared)


def container_origin(container: InputContainer) -> float:
    """When the container's first packet is stamped (seconds)."""
    return (container.start_time or 0) / av.time_base


def _check_claim(size: int, duration: float, max_seconds: float) -> None:
    if duration <= 0:
        raise unsupported("its length is unknown")
    _check_bytes_hold(size, duration)
    check_length(duration, max_seconds)


def _describe(
    container: InputContainer, readable: list[AudioStream | VideoStream], duration: float
) -> MediaInfo:
    audio = next((s for s in readable if isinstance(s, AudioStream)), None)
    video = next((s for s in readable if isinstance(s, VideoStream)), None)
    kept = {s.index for s in readable}
    wanted = (first_audio(container), first_video(container))
    left_out = [s for s in wanted if s is not None and s.index not in kept]
    return MediaInfo(
        format_name=container.format.name,
        duration_seconds=duration,
        has_audio=audio is not None,
        has_video=video is not None,
        audio=_audio_info(audio) if audio is not None else None,
        video=_video_info(video) if video is not None else None,
        streams=[
            StreamInfo(
                index=s.index,
                kind=s.type,
                codec=codec_name(s),
                duration_seconds=stream_seconds(s),
            )
            for s in container.streams
        ],
        warnings=[
            f"The {s.type} stream ({codec_name(s)}) decodes nothing at its start; "
            "it is left out of the analysis."
            for s in left_out
        ],
    )


def codec_name(stream: Stream) -> str:
    """A stream's codec; data and attachment streams (an Ogg Skeleton, a font) have none
    PyAV can name, so they go by their kind."""
    context = getattr(stream, "codec_context", None)
    return context.codec.canonical_name if context is not None else stream.type


def _audio_info(stream: AudioStream) -> AudioInfo:
    return AudioInfo(
        codec=codec_name(stream),
        sample_rate=stream.sample_rate,
        channels=stream.channels,
    )


def _video_info(stream: VideoStream) -> VideoInfo:
    rate = stream.average_rate or stream.guessed_rate or stream.base_rate
    return VideoInfo(
        codec=codec_name(stream),
        width=stream.width,
        height=stream.height,
        fps=float(rate) if rate else 0.0,
    )


def _decoding_at_head(
    container: InputContainer, streams: list[AudioStream | VideoStream], reach: _Reach
) -> list[AudioStream | VideoStream]:
    """The streams that give a picture or sound within their first packets, damaged packets
    skipped; none at all is a file that is not a recording."""
    waiting = {stream.index for stream in streams}
    for count, packet in enumerate(container.demux(streams)):
        reach.add(packet)
        if packet.stream.index in waiting and decoded(packet):
            waiting.discard(packet.stream.index)
        if not waiting or count >= _HEAD_PACKETS:
            break
    readable = [stream for stream in streams if stream.index not in waiting]
    if not readable:
        raise unsupported("its first packets do not decode")
    return readable


@dataclass
class _Reach:
    """How far the packets read go (seconds): the latest end of a stamped one; packets with no
    timestamps at all (a short MPEG program stream's) follow one another, so their durations
    add up, stream by stream."""

    stamped: float = 0.0
    untimed: dict[int, float] = field(default_factory=dict)

    def add(self, packet: Packet[Stream]) -> None:
        if packet.pts is not None:
            self.stamped = max(self.stamped, _packet_end(packet))
        elif packet.duration and packet.time_base is not None:
            index = packet.stream.index
            self.untimed[index] = self.untimed.get(index, 0.0) + float(
                packet.duration * packet.time_base
            )

    @property
    def seconds(self) -> float:
        return max(self.stamped, *self.untimed.values(), 0.0)


def _check_tail(container: InputContainer, duration: float) -> None:
    """The packets must reach the declared end: a cut-off file still opens, with its old length.

    MP4 and MP3 headers keep the full length of a truncated file, so seek to just before its
    declared end and demux (no decoding) to see how far the packets really go.
    """
    start = container_origin(container)
    target = start + max(0.0, duration - _TAIL_LOOKBACK_SECONDS)
    try:
        container.seek(round(target * av.time_base), backward=True)
    except av.FFmpegError:
        return  # Some formats cannot seek; their head decoded, which is the best check left.
    stamped = (packet for packet in container.demux() if packet.pts is not None)
    reached = max(map(_packet_end, stamped), default=None)
    if reached is None:
        raise unsupported("nothing can be read near its declared end (truncated?)")
    missing = start + duration - reached
    if missing > max(_TAIL_SLACK_SECONDS, _TAIL_SLACK_FRACTION * duration):
        raise unsupported(f"it stops about {missing:.0f} s before its declared end (truncated?)")


def _check_picture(video: VideoInfo | None) -> None:
    """A picture over the decoders' limit is not even sized when probed: say why it fails."""
    if video is not None and not 0 < video.width * video.height <= MAX_PIXELS:
        raise unsupported("its picture has no size, or one larger than 8K (8192x4320)")


def _check_bytes_hold(size: int, duration: float) -> None:
    """A few kilobytes cannot hold days of recording, whatever a header or a timestamp says."""
    if duration * MIN_BYTES_PER_SECOND > size:
        raise unsupported(f"{size} bytes cannot hold the {duration:.0f} s it claims to last")


def _check_riff_size(header: bytes, size: int) -> None:
    """A WAV header declares the file's size; FFmpeg quietly plays a cut-off WAV as a short one."""
    if len(header) < 12 or header[:4] != b"RIFF" or header[8:12] != b"WAVE":
        return
    declared = int.from_bytes(header[4:8], "little") + 8
    # Writers that stream (to a pipe) leave the size at 0 or all ones: nothing to compare.
    if declared in (8, 0xFFFFFFFF + 8):
        return
    if size < declared * (1.0 - _TAIL_SLACK_FRACTION):
        raise unsupported("it is shorter than its header declares (truncated?)")


def _packet_end(packet: Packet[Stream]) -> float:
    return float(((packet.pts or 0) + (packet.duration or 0)) * packet.time_base)


def paced(progress: Progress, interval_seconds: float = 0.25) -> Progress:
    """Wrap `progress` so it is called at most once per interval (and always for 1.0)."""
    last = -interval_seconds

    def report(fraction: float) -> None:
        nonlocal last
        now = time.monotonic()
        if fraction >= 1.0 or now - last >= interval_seconds:
            last = now
            progress(min(max(fraction, 0.0), 1.0))

    return report
