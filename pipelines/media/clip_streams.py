"""One stream of a clip: its packets copied as they are, or decoded and encoded again.

Each is fed the stream's packets from the clip's first frame on, in file order, writes what
falls between the clip's start and stop onto the clip's own clock (its start is 0), and says when
it has seen the stop. Corrupt packets are skipped and counted, as the analyses skip them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from fractions import Fraction
from typing import Any, Protocol

import av
import numpy as np
from av.audio.codeccontext import AudioCodecContext
from av.audio.resampler import AudioResampler
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.frame import Frame
from av.packet import Packet
from av.stream import Stream
from av.video.codeccontext import VideoCodecContext
from av.video.frame import VideoFrame
from av.video.stream import VideoStream

# Re-encoded pictures: x264 at its "veryfast" preset keeps a clip's encode near real time on one
# vCPU; a clip is a preview, so taller pictures are scaled down to this height.
VIDEO_ENCODER = "libx264" if "libx264" in av.codecs_available else "mpeg4"
VIDEO_OPTIONS = {"preset": "veryfast", "crf": "23"} if VIDEO_ENCODER == "libx264" else {}
MAX_ENCODED_HEIGHT = 720
# Encoded timestamps count milliseconds, which suits constant and variable frame rates alike.
_CLOCK = Fraction(1, 1000)
# Samples per frame each sound encoder takes.
_FRAME_SAMPLES = {"aac": 1024, "libopus": 960, "libmp3lame": 1152}
# Rates AAC is made for; any other is resampled to 48 kHz (Opus takes only 48 kHz).
_AAC_RATES = frozenset({8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 96000})
# A frame stamped within this of the start belongs to the clip (timestamps are rounded).
_SLACK = 1e-3


class StreamCut(Protocol):
    """One stream of a clip being written."""

    copied: bool
    done: bool  # the stream has reached the clip's stop: later packets change nothing
    written: int  # packets or frames written
    skipped: int  # corrupt packets left out

    def take(self, packet: Packet[Stream]) -> None: ...

    def finish(self) -> None: ...


def _seconds(stamp: int | None, time_base: Fraction | None) -> float | None:
    return None if stamp is None or time_base is None else float(stamp * time_base)


class _Copy:
    """Packets as they are, shifted onto the clip's clock."""

    copied = True

    def __init__(self, output: OutputContainer, source: Stream, start: float, stop: float):
        self._output = output
        self._stream = output.add_stream_from_template(source)
        self._start, self._stop = start, stop
        self.done, self.written, self.skipped = False, 0, 0

    def take(self, packet: Packet[Stream]) -> None:
        tb = packet.time_base
        shown = _seconds(packet.pts, tb)
        decoded = _seconds(packet.dts, tb)
        when = decoded if decoded is not None else shown
        if self.done or when is None or tb is None:
            return
        # In decode order, so a picture shown before the stop but decoded after it is in too.
        if when >= self._stop:
            self.done = True
            return
        if shown is not None and shown < self._start - _SLACK:
            return  # sound before the first picture, or pictures that lean on an earlier one
        shift = round(self._start / tb)
        if packet.pts is not None:
            packet.pts -= shift
        if packet.dts is not None:
            packet.dts -= shift
        packet.stream = self._stream
        self._output.mux(packet)
        self.written += 1

    def finish(self) -> None:
        return


class _Decoding(ABC):
    """What re-encoding a stream shares: decoding its packets, skipping corrupt ones; each kind
    of stream says what becomes of a decoded frame."""

    copied = False

    def __init__(self, source: Stream, start: float, stop: float) -> None:
        self._source = source
        self._start, self._stop = start, stop
        self.done, self.written, self.skipped = False, 0, 0

    def take(self, packet: Packet[Stream]) -> None:
        if self.done:
            return
        try:
            frames = packet.decode()
        except av.FFmpegError:
            self.skipped += 1
            return
        for frame in frames:
            if isinstance(frame, Frame):
                self._frame(frame)

    def _drain(self) -> None:
        """The frames the decoder still holds (pictures are decoded a few packets late)."""
        context = self._source.codec_context
        assert isinstance(context, VideoCodecContext | AudioCodecContext)
        try:
            frames: list[Any] = list(context.decode(None))
        except av.FFmpegError:
            return
        for frame in frames:
            self._frame(frame)

    def _in_clip(self, frame: Frame, length: float = 0.0) -> bool:
        """Whether the frame (lasting `length`) is inside the clip; one past the stop ends it."""
        time = frame.time
        if time is None or self.done:
            return False
        if time >= self._stop:
            self.done = True
            return False
        return time + length > self._start - _SLACK

    @abstractmethod
    def _frame(self, frame: Frame) -> None: ...


class _EncodeVideo(_Decoding):
    """Pictures decoded and encoded as H.264 (MPEG-4 Part 2 where this FFmpeg lacks x264)."""

    def __init__(
        self, output: OutputContainer, source: VideoStream, start: float, stop: float
    ) -> None:
        super().__init__(source, start, stop)
        source.codec_context.thread_type = "AUTO"
        self._output = output
        rate = source.average_rate or source.guessed_rate or Fraction(25)
        stream = output.add_stream(VIDEO_ENCODER, rate=rate, options=VIDEO_OPTIONS)
        assert isinstance(stream, VideoStream)
        self._stream = stream
        self._stream.codec_context.time_base = _CLOCK
        self._width, self._height = encoded_size(source)
        self._stream.width, self._stream.height = self._width, self._height
        self._stream.pix_fmt = "yuv420p"
        self._last = -1

    def _frame(self, frame: Frame) -> None:
        assert isinstance(frame, VideoFrame)
        if not self._in_clip(frame):
            return
        stamp = round(((frame.time or 0.0) - self._start) / _CLOCK)
        if stamp <= self._last:
            return  # two frames on one millisecond: the encoder needs rising timestamps
        self._last = stamp
        picture = frame.reformat(width=self._width, height=self._height, format="yuv420p")
        picture.pts, picture.time_base = max(stamp, 0), _CLOCK
        self._output.mux(self._stream.encode(picture))
        self.written += 1

    def finish(self) -> None:
        self._drain()
        self._output.mux(self._stream.encode(None))


def encoded_size(source: VideoStream) -> tuple[int, int]:
    """The re-encoded picture's size: as shown (square pixels), at most MAX_ENCODED_HEIGHT tall,
    both sides even (4:2:0 needs them so)."""
    width, height = source.codec_context.width, source.codec_context.height
    aspect = float(source.sample_aspect_ratio or 1)
    shown_width = width * aspect
    scale = min(1.0, MAX_ENCODED_HEIGHT / max(height, 1))
    return max(2, round(shown_width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


class _EncodeAudio(_Decoding):
    """Sound decoded, resampled to what the encoder takes, and encoded."""

    def __init__(
        self,
        output: OutputContainer,
        source: AudioStream,
        start: float,
        stop: float,
        codec: str,
    ) -> None:
        super().__init__(source, start, stop)
        self._output = output
        rate = source.rate if codec != "libopus" and source.rate in _AAC_RATES else 48000
        layout = "mono" if source.channels == 1 else "stereo"
        stream = output.add_stream(codec, rate=rate)
        assert isinstance(stream, AudioStream)
        stream.layout = layout
        self._stream, self._rate = stream, rate
        self._resampler = AudioResampler(
            format=stream.codec_context.format.name,
            layout=layout,
            rate=rate,
            frame_size=_FRAME_SAMPLES.get(codec),
        )
        self._samples: int | None = None

    def _frame(self, frame: Frame) -> None:
        assert isinstance(frame, av.AudioFrame)
        if not self._in_clip(frame, frame.samples / max(frame.sample_rate, 1)):
            return
        time, rate = frame.time or 0.0, frame.sample_rate
        # A frame across the start or the stop keeps only its samples inside the clip.
        first = max(0, round((self._start - time) * rate))
        last = min(frame.samples, round((self._stop - time) * rate))
        if first >= last:
            return
        if self._samples is None:  # the sound may start a little after the picture
            self._samples = max(0, round((time + first / rate - self._start) * self._rate))
        kept = frame if (first, last) == (0, frame.samples) else samples_of(frame, first, last)
        kept.pts = None  # the resampler would otherwise fill gaps in the source's stamps
        self._encode(self._resampler.resample(kept))

    def _encode(self, frames: list[av.AudioFrame]) -> None:
        for out in frames:
            out.pts, out.time_base = self._samples or 0, Fraction(1, self._rate)
            self._samples = (self._samples or 0) + out.samples
            self._output.mux(self._stream.encode(out))
            self.written += 1

    def finish(self) -> None:
        self._drain()
        if self._samples is not None:
            self._encode(self._resampler.resample(None))
        self._output.mux(self._stream.encode(None))


def samples_of(frame: av.AudioFrame, first: int, last: int) -> av.AudioFrame:
    """Samples `first` to `last` of a frame, in its own format."""
    data: Any = frame.to_ndarray()
    width = 1 if frame.format.is_planar else len(frame.layout.channels)
    kept = np.ascontiguousarray(data[:, first * width : last * width])
    part = av.AudioFrame.from_ndarray(kept, format=frame.format.name, layout=frame.layout.name)
    part.sample_rate = frame.sample_rate
    return part


def copier(output: OutputContainer, source: Stream, start: float, stop: float) -> StreamCut:
    """A stream copied from `start` (a keyframe's time, for pictures) to `stop`."""
    return _Copy(output, source, start, stop)


def encoder(
    output: OutputContainer,
    source: Stream,
    start: float,
    stop: float,
    *,
    audio_codec: str = "aac",
) -> StreamCut:
    """A stream re-encoded from `start` to `stop`: pictures as H.264, sound as `audio_codec`."""
    if isinstance(source, VideoStream):
        return _EncodeVideo(output, source, start, stop)
    assert isinstance(source, AudioStream)
    return _EncodeAudio(output, source, start, stop, audio_codec)
