"""Long synthetic recordings for the scale benchmark, made in minutes rather than hours.

Encoding three hours of 720p30 takes hours on this machine (about 60 frames a second), so one
block of a few minutes is encoded (flat colours, a hard cut halfway and another where the block
repeats, a box moving across, two loud bursts) and its packets are copied over and over, their
timestamps shifted, into one file as long as asked. Decoding it costs what decoding that many
real frames of such content costs; only the content repeats. The audio block's length is a whole
number of AAC frames, so the copies join without a gap or an overlap: the encoder's priming
frame is kept once, at the very start.

Files are cached by their parameters, so a rerun of the benchmark skips making them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer
from av.packet import Packet
from av.stream import Stream

from samples.media import CHUNK_SECONDS, AudioPlan, make_chat

AAC_FRAME = 1024
# Where a block's cut and bursts fall, as fractions of it (the second cut is the block's end).
CUT_AT = 0.5
BURSTS_AT = (0.3, 0.8)
# Flat scenes that differ in brightness and colour, so every cut is plain.
_SCENES = ((60, 90, 200), (190, 160, 60))
_BOX = 160


@dataclass(frozen=True)
class RecordingSpec:
    """What to make: its length, its pictures (None: audio only) and its sound."""

    seconds: float
    video: tuple[int, int, int] | None = (1280, 720, 30)  # width, height, fps
    sample_rate: int = 48000
    channels: int = 2
    block_seconds: float = 360.0
    audio_bit_rate: int = 128_000

    def __post_init__(self) -> None:
        if (self.block_seconds * self.sample_rate) % AAC_FRAME:
            raise ValueError("a block must be a whole number of AAC frames long")
        if self.video is not None and (self.block_seconds * self.video[2]) % 1:
            raise ValueError("a block must be a whole number of frames long")

    @property
    def suffix(self) -> str:
        return ".mp4" if self.video else ".m4a"

    @property
    def content_type(self) -> str:
        return "video/mp4" if self.video else "audio/mp4"

    def key(self) -> str:
        """A short name for these parameters, for the cache."""
        return f"{self.seconds / 3600:g}h-{self.block_key()}"

    def block_key(self) -> str:
        """A short name for the block: recordings that differ only in length share it."""
        fields = {k: v for k, v in asdict(self).items() if k != "seconds"}
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        kind = "x".join(map(str, self.video)) if self.video else f"audio{self.sample_rate}"
        return f"{kind}-{digest[:10]}"

    def cuts(self) -> list[float]:
        """Every hard cut in the whole recording (none without pictures)."""
        if self.video is None:
            return []
        block = self.block_seconds
        starts = _block_starts(self)
        return [t for s in starts for t in (s + CUT_AT * block, s + block) if t < self.seconds]

    def bursts(self) -> list[float]:
        """Every loud burst in the whole recording."""
        starts = _block_starts(self)
        times = [s + f * self.block_seconds for s in starts for f in BURSTS_AT]
        return [t for t in times if t < self.seconds]


def _block_starts(spec: RecordingSpec) -> list[float]:
    count = int(np.ceil(spec.seconds / spec.block_seconds))
    return [i * spec.block_seconds for i in range(count)]


def cached_recording(spec: RecordingSpec, cache_dir: Path) -> Path:
    """The recording `spec` describes, made once into `cache_dir` and reused after."""
    path = cache_dir / f"{spec.key()}{spec.suffix}"
    if path.exists():
        return path
    cache_dir.mkdir(parents=True, exist_ok=True)
    block = cache_dir / f"block-{spec.block_key()}{spec.suffix}"
    if not block.exists():
        partial_block = block.with_suffix(".partial" + spec.suffix)
        encode_block(spec, partial_block)
        partial_block.rename(block)
    partial = path.with_suffix(".partial" + spec.suffix)
    repeat_block(block, partial, spec)
    partial.rename(path)
    return path


def cached_chat(spec: RecordingSpec, cache_dir: Path) -> Path:
    """A chat log for the recording: a trickle, and a flood at each of its bursts."""
    path = cache_dir / f"{spec.key()}-chat.jsonl"
    if not path.exists():
        cache_dir.mkdir(parents=True, exist_ok=True)
        make_chat(path, duration_seconds=spec.seconds, bursts_at=spec.bursts())
    return path


def encode_block(spec: RecordingSpec, path: Path) -> None:
    """Encode one block: H.264 (x264 `veryfast`, a keyframe every 2 s as streaming services
    ask) and AAC, or AAC alone."""
    plan = AudioPlan(
        bursts_at=[f * spec.block_seconds for f in BURSTS_AT],
        burst_seconds=2.0,
        quiet_spans=(),
        sample_rate=spec.sample_rate,
        channels=spec.channels,
        seed=0,
    )
    with av.open(str(path), "w", format="mp4") as container:
        audio = container.add_stream("aac", rate=spec.sample_rate)
        audio.layout = "mono" if spec.channels == 1 else "stereo"
        audio.bit_rate = spec.audio_bit_rate
        sounds = _sound(plan, spec.block_seconds)
        if spec.video is None:
            for sound in sounds:
                container.mux(audio.encode(sound))
        else:
            _encode_pictures(container, spec.video, spec.block_seconds, sounds, audio)
            for sound in sounds:
                container.mux(audio.encode(sound))
        container.mux(audio.encode(None))


def _encode_pictures(
    container: OutputContainer,
    video: tuple[int, int, int],
    seconds: float,
    sounds: Iterator[av.AudioFrame],
    audio: AudioStream,
) -> None:
    """The pictures, with a second of sound muxed after each second of them."""
    width, height, fps = video
    stream = container.add_stream(
        "libx264", rate=fps, options={"preset": "veryfast", "x264-params": f"keyint={2 * fps}"}
    )
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    stream.thread_type = "FRAME"
    frames = round(seconds * fps)
    luma = np.empty((height, width), np.uint8)
    for index in range(frames):
        container.mux(stream.encode(_picture(luma, index, fps, frames)))
        if index % round(fps * CHUNK_SECONDS) == 0:
            sound = next(sounds, None)
            if sound is not None:
                container.mux(audio.encode(sound))
    container.mux(stream.encode(None))


def _picture(luma: np.ndarray, index: int, fps: int, frames: int) -> av.VideoFrame:
    """A flat scene with a box gliding across it; the scene changes halfway through the block."""
    height, width = luma.shape
    y, u, v = _SCENES[int(index >= CUT_AT * frames)]
    luma[:] = y
    x = (index * 6) % (width - _BOX)
    top = height // 2 - _BOX // 2
    luma[top : top + _BOX, x : x + _BOX] = 255 - y
    chroma_u = np.full((height // 4, width), u, np.uint8)
    chroma_v = np.full((height // 4, width), v, np.uint8)
    frame = av.VideoFrame.from_ndarray(np.concatenate([luma, chroma_u, chroma_v]), "yuv420p")
    frame.pts = index
    frame.time_base = Fraction(1, fps)
    return frame


def _sound(plan: AudioPlan, seconds: float) -> Iterator[av.AudioFrame]:
    layout = "mono" if plan.channels == 1 else "stereo"
    total = round(seconds * plan.sample_rate)
    step = round(CHUNK_SECONDS * plan.sample_rate)
    for first in range(0, total, step):
        frame = av.AudioFrame.from_ndarray(
            plan.chunk(first, min(step, total - first)), format="fltp", layout=layout
        )
        frame.sample_rate = plan.sample_rate
        frame.pts = first
        frame.time_base = Fraction(1, plan.sample_rate)
        yield frame


def repeat_block(block: Path, path: Path, spec: RecordingSpec) -> None:
    """Copy the block's packets into `path` until it is `spec.seconds` long, each copy's
    timestamps shifted by the copies before it."""
    copies = int(np.ceil(spec.seconds / spec.block_seconds))
    with (
        av.open(str(block)) as source,
        av.open(
            str(path), "w", format="mp4", container_options={"movflags": "faststart"}
        ) as output,
    ):
        targets = {s.index: output.add_stream_from_template(s) for s in source.streams}
        for copy in range(copies):
            for packet in _copy_of_block(source, copy, spec):
                packet.stream = targets[packet.stream_index]
                output.mux(packet)


def _copy_of_block(
    source: InputContainer, copy: int, spec: RecordingSpec
) -> Iterator[Packet[Stream]]:
    """The block's packets, as copy number `copy` (from 0); the priming frame only in the first,
    and nothing past the end of the recording."""
    source.seek(0)
    for packet in source.demux():
        if packet.dts is None or packet.time_base is None:
            continue  # the demuxer's empty end-of-stream packet
        base = packet.time_base
        shift = round(copy * spec.block_seconds / base)
        if copy and packet.stream.type == "audio" and (packet.pts or 0) < 0:
            continue
        if (packet.dts + shift) * base >= spec.seconds:
            continue
        packet.pts = packet.pts + shift if packet.pts is not None else None
        packet.dts += shift
        yield packet
