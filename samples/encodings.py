"""The planted recording of `samples.media` (hard cuts, loud bursts) in any codec and container
PyAV can write, with a chosen keyframe interval, and optionally a stretch whose picture packets
are all zeros (no picture in it can be decoded, though the file's index and its sound are
whole). The clip tests and benchmark cut every kind of source from these."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
from av.container import OutputContainer
from av.packet import Packet

from samples.media import AudioPlan, ScenePainter


@dataclass(frozen=True)
class Encoding:
    """What to write: a container format and its codecs (None: no such stream)."""

    format: str
    video: str | None
    audio: str | None
    audio_rate: int = 48000


def encode_recording(
    path: Path,
    encoding: Encoding,
    *,
    duration_seconds: float,
    cuts_at: Sequence[float] = (),
    bursts_at: Sequence[float] = (),
    keyframe_seconds: float | None = 2.0,
    zeroed: tuple[float, float] | None = None,
    fps: int = 25,
    size: tuple[int, int] = (320, 180),
) -> Path:
    """Write the planted recording; `keyframe_seconds` None leaves keyframes to the encoder."""
    painter = ScenePainter(size=size, fps=fps, cuts_at=cuts_at, seed=2)
    plan = AudioPlan(
        bursts_at=bursts_at,
        burst_seconds=2.0,
        quiet_spans=(),
        sample_rate=encoding.audio_rate,
        channels=2,
        seed=2,
    )
    options = {"movflags": "+faststart"} if encoding.format in ("mp4", "mov") else {}
    with av.open(str(path), "w", format=encoding.format, container_options=options) as output:
        writer = _Writer(output, zeroed)
        video = _video_stream(output, encoding, fps, size, keyframe_seconds)
        audio = _audio_stream(output, encoding)
        sounds = _sound(plan, duration_seconds, audio)
        for index in range(round(duration_seconds * fps)):
            if video is not None:
                writer.mux(video.encode(painter.frame(index)))
            if audio is not None and index % fps == 0:
                for frame in next(sounds, []):
                    writer.mux(audio.encode(frame))
        if video is not None:
            writer.mux(video.encode(None))
        if audio is not None:
            for frames in sounds:
                for frame in frames:
                    writer.mux(audio.encode(frame))
            writer.mux(audio.encode(None))
    return path


class _Writer:
    """Muxes packets, zeroing the bytes of the pictures stamped inside `zeroed`."""

    def __init__(self, output: OutputContainer, zeroed: tuple[float, float] | None) -> None:
        self._output, self._zeroed = output, zeroed

    def mux(self, packets: list[Packet[Any]]) -> None:
        for packet in packets:
            self._output.mux(self._spoiled(packet))

    def _spoiled(self, packet: Packet[Any]) -> Packet[Any]:
        if self._zeroed is None or packet.pts is None or packet.time_base is None:
            return packet
        if packet.stream.type != "video":
            return packet
        time = float(packet.pts * packet.time_base)
        if not self._zeroed[0] <= time < self._zeroed[1]:
            return packet
        blank = Packet(bytes(packet.size))
        blank.pts, blank.dts, blank.time_base = packet.pts, packet.dts, packet.time_base
        blank.stream = packet.stream
        blank.is_keyframe = packet.is_keyframe
        return blank


def _video_stream(
    output: OutputContainer,
    encoding: Encoding,
    fps: int,
    size: tuple[int, int],
    keyframe_seconds: float | None,
) -> av.VideoStream | None:
    if encoding.video is None:
        return None
    stream = output.add_stream(encoding.video, rate=fps)
    assert isinstance(stream, av.VideoStream)
    stream.width, stream.height, stream.pix_fmt = size[0], size[1], "yuv420p"
    if keyframe_seconds is not None:
        stream.codec_context.gop_size = round(keyframe_seconds * fps)
    return stream


def _audio_stream(output: OutputContainer, encoding: Encoding) -> av.AudioStream | None:
    if encoding.audio is None:
        return None
    stream = output.add_stream(encoding.audio, rate=encoding.audio_rate)
    assert isinstance(stream, av.AudioStream)
    stream.layout = "stereo"
    return stream


def _sound(
    plan: AudioPlan, duration_seconds: float, stream: av.AudioStream | None
) -> Iterator[list[av.AudioFrame]]:
    """The planned sound a second at a time, as frames the encoder takes."""
    if stream is None:
        return
    sizes = {"libopus": 960, "aac": 1024, "libmp3lame": 1152, "ac3": 1536, "mp2": 1152}
    resampler = av.AudioResampler(
        format=stream.codec_context.format.name,
        layout="stereo",
        rate=plan.sample_rate,
        frame_size=sizes.get(stream.codec_context.name),
    )
    step = plan.sample_rate
    total = round(duration_seconds * plan.sample_rate)
    for first in range(0, total, step):
        samples = plan.chunk(first, min(step, total - first))
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="stereo")
        frame.sample_rate, frame.pts = plan.sample_rate, first
        frame.time_base = Fraction(1, plan.sample_rate)
        yield resampler.resample(frame)
    yield resampler.resample(None)
