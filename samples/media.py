"""Synthetic recordings whose highlights are known: loud bursts, silences, hard cuts and chat
bursts planted at given times. Tests, the `longrun demo` command and the benchmarks use them.

Everything is generated and encoded a second at a time, so an hour of audio or ten minutes of
720p video never sits in memory whole.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Literal

import av
import numpy as np
import numpy.typing as npt
from av.audio.stream import AudioStream
from av.container import OutputContainer
from av.video.stream import VideoStream

Samples = npt.NDArray[np.float32]
ChatFormat = Literal["jsonl", "csv"]
AudioCodec = Literal["pcm_s16le", "aac", "libmp3lame"]

BED_DBFS = -30.0
BURST_DBFS = -6.0
CHUNK_SECONDS = 1.0

# Container format and audio encoder for each file suffix.
_AUDIO_OUTPUTS: dict[str, tuple[str, AudioCodec]] = {
    ".wav": ("wav", "pcm_s16le"),
    ".m4a": ("mp4", "aac"),
    ".mp4": ("mp4", "aac"),
    ".mp3": ("mp3", "libmp3lame"),
}
_VIDEO_OUTPUTS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".mpg": "mpeg", ".avi": "avi"}
# Consecutive scenes differ in brightness by at least 80 grey levels, so every cut is plain.
_LUMA = (50, 190, 100, 220, 70, 160, 30, 130)
_CHROMA = ((90, 200), (160, 60), (60, 110), (200, 150), (120, 40), (40, 180), (180, 90))


class AudioPlan:
    """The planted signal: a bed near -30 dBFS, bursts near -6 dBFS, digital silence in spans."""

    def __init__(
        self,
        *,
        bursts_at: Sequence[float],
        burst_seconds: float,
        quiet_spans: Sequence[tuple[float, float]],
        sample_rate: int,
        channels: int,
        seed: int,
    ) -> None:
        self.bursts = [(t, t + burst_seconds) for t in bursts_at]
        self.quiet = [(start, end) for start, end in quiet_spans]
        self.sample_rate = sample_rate
        self.channels = channels
        self.rng = np.random.default_rng(seed)

    def chunk(self, first_sample: int, count: int) -> Samples:
        """Samples `first_sample` to `first_sample + count`, shaped (channels, count)."""
        t = (first_sample + np.arange(count)) / self.sample_rate
        noise = self.rng.standard_normal((self.channels, count))
        # A slow swell of about +-2 dB keeps the bed from being perfectly flat.
        swell = 1.0 + 0.25 * np.sin(2 * np.pi * t / 7.0)
        bed = swell * (0.025 * noise + 0.027 * np.sin(2 * np.pi * 220.0 * t))
        burst = 0.25 * noise + 0.6 * np.sin(2 * np.pi * 440.0 * t)
        signal = np.where(_inside(t, self.bursts), burst, bed)
        signal[:, _inside(t, self.quiet)] = 0.0
        return np.clip(signal, -1.0, 1.0).astype(np.float32)


def _inside(t: npt.NDArray[np.float64], spans: list[tuple[float, float]]) -> npt.NDArray[np.bool_]:
    mask = np.zeros(t.shape, dtype=bool)
    for start, end in spans:
        mask |= (t >= start) & (t < end)
    return mask


def make_audio(
    path: Path,
    *,
    duration_seconds: float,
    bursts_at: Sequence[float],
    burst_seconds: float = 2.0,
    quiet_spans: Sequence[tuple[float, float]] = (),
    sample_rate: int = 44100,
    channels: int = 2,
    seed: int = 0,
) -> None:
    """Write an audio file; the suffix picks the format: .wav, .m4a/.mp4 (AAC) or .mp3."""
    container_format, codec = _audio_output(path)
    plan = AudioPlan(
        bursts_at=bursts_at,
        burst_seconds=burst_seconds,
        quiet_spans=quiet_spans,
        sample_rate=sample_rate,
        channels=channels,
        seed=seed,
    )
    with _open_output(path, container_format) as container:
        stream = container.add_stream(codec, rate=sample_rate)
        stream.layout = _layout(channels)
        for frame in _audio_frames(plan, duration_seconds):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))


def _audio_output(path: Path) -> tuple[str, AudioCodec]:
    suffix = path.suffix.lower()
    if suffix not in _AUDIO_OUTPUTS:
        raise ValueError(f"no audio format for {suffix!r}; use one of {sorted(_AUDIO_OUTPUTS)}")
    container_format, codec = _AUDIO_OUTPUTS[suffix]
    if codec not in av.codecs_available:
        raise ValueError(f"this FFmpeg build cannot encode {codec}")
    return container_format, codec


def _open_output(path: Path, container_format: str) -> OutputContainer:
    # Index first, as web-ready uploads are: a truncated copy then still opens, which is the
    # harder case for the probe to catch.
    options = {"movflags": "faststart"} if container_format in ("mp4", "mov") else {}
    return av.open(str(path), "w", format=container_format, container_options=options)


def _layout(channels: int) -> str:
    return "mono" if channels == 1 else "stereo"


def _audio_frames(plan: AudioPlan, duration_seconds: float) -> Iterator[av.AudioFrame]:
    total = round(duration_seconds * plan.sample_rate)
    step = round(CHUNK_SECONDS * plan.sample_rate)
    for first in range(0, total, step):
        samples = plan.chunk(first, min(step, total - first))
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=_layout(plan.channels))
        frame.sample_rate = plan.sample_rate
        frame.pts = first
        frame.time_base = Fraction(1, plan.sample_rate)
        yield frame


class ScenePainter:
    """Frames of a video whose scenes change abruptly at given times and drift gently between."""

    def __init__(self, *, size: tuple[int, int], fps: int, cuts_at: Sequence[float], seed: int):
        width, height = size
        if width % 2 or height % 2:
            raise ValueError("video width and height must be even")
        self.width, self.height, self.fps = width, height, fps
        self.cuts = sorted(cuts_at)
        rng = np.random.default_rng(seed)
        # A fixed grain per picture: it costs little to encode yet makes scenes look textured.
        self.grain = rng.integers(-8, 9, size=(height, width), dtype=np.int16)
        period = max(16, width // 2)
        wave = 24 * np.sin(2 * np.pi * np.arange(2 * max(width, height)) / period)
        self.wave = wave.astype(np.int16)

    def scene_at(self, time: float) -> int:
        return int(np.searchsorted(self.cuts, time, side="right"))

    def frame(self, index: int) -> av.VideoFrame:
        scene = self.scene_at(index / self.fps)
        luma = self._luma(scene, index)
        u, v = _CHROMA[scene % len(_CHROMA)]
        chroma = np.full(self.width * self.height // 4, u, dtype=np.uint8)
        planes = np.concatenate([luma.ravel(), chroma, np.full_like(chroma, v)])
        picture = planes.reshape(self.height * 3 // 2, self.width)
        frame = av.VideoFrame.from_ndarray(picture, format="yuv420p")
        frame.pts = index
        frame.time_base = Fraction(1, self.fps)
        return frame

    def _luma(self, scene: int, index: int) -> npt.NDArray[np.uint8]:
        shift = (2 * index) % (len(self.wave) // 2)
        # Even scenes drift sideways, odd ones up and down, so neighbours differ in shape too.
        if scene % 2 == 0:
            drift = self.wave[shift : shift + self.width][np.newaxis, :]
        else:
            drift = self.wave[shift : shift + self.height][:, np.newaxis]
        base = _LUMA[scene % len(_LUMA)]
        luma: npt.NDArray[np.uint8] = np.clip(base + self.grain + drift, 0, 255).astype(np.uint8)
        return luma


def make_video(
    path: Path,
    *,
    duration_seconds: float,
    cuts_at: Sequence[float],
    fps: int = 25,
    size: tuple[int, int] = (320, 180),
    with_audio: bool = True,
    bursts_at: Sequence[float] = (),
    seed: int = 0,
) -> None:
    """Write a video with hard cuts at `cuts_at`: .mp4, .mov or .mkv (H.264 if available, and
    AAC), .mpg (an MPEG-2 program stream with MP2 sound, as DVDs and TV recorders write) or
    .avi (MPEG-4 Part 2 with AC3 sound, as DVD rips were made)."""
    container_format = _VIDEO_OUTPUTS.get(path.suffix.lower())
    if container_format is None:
        raise ValueError(
            f"no video format for {path.suffix!r}; use one of {sorted(_VIDEO_OUTPUTS)}"
        )
    painter = ScenePainter(size=size, fps=fps, cuts_at=cuts_at, seed=seed)
    plan = AudioPlan(
        bursts_at=bursts_at,
        burst_seconds=2.0,
        quiet_spans=(),
        sample_rate=44100,
        channels=2,
        seed=seed,
    )
    with _open_output(path, container_format) as container:
        video = _add_video_stream(container, painter, container_format)
        audio = _add_audio_stream(container, container_format, plan) if with_audio else None
        sounds = _audio_frames(plan, duration_seconds) if audio is not None else iter(())
        frames_per_chunk = round(fps * CHUNK_SECONDS)
        for index in range(round(duration_seconds * fps)):
            container.mux(video.encode(painter.frame(index)))
            # A second of sound after each second of pictures keeps the muxer's queue short.
            sound = next(sounds, None) if index % frames_per_chunk == 0 else None
            if audio is not None and sound is not None:
                container.mux(audio.encode(sound))
        container.mux(video.encode(None))
        if audio is not None:
            for sound in sounds:
                container.mux(audio.encode(sound))
            container.mux(audio.encode(None))


def _add_audio_stream(
    container: OutputContainer, container_format: str, plan: AudioPlan
) -> AudioStream:
    if container_format == "mpeg":
        stream = container.add_stream("mp2", rate=plan.sample_rate)
    elif container_format == "avi":
        stream = container.add_stream("ac3", rate=plan.sample_rate)
    else:
        stream = container.add_stream("aac", rate=plan.sample_rate)
    stream.layout = _layout(plan.channels)
    return stream


def _add_video_stream(
    container: OutputContainer, painter: ScenePainter, container_format: str = "mp4"
) -> VideoStream:
    if container_format == "mpeg":
        stream = container.add_stream("mpeg2video", rate=painter.fps)
    elif container_format == "avi":
        stream = container.add_stream("mpeg4", rate=painter.fps)
    elif "libx264" in av.codecs_available:
        stream = container.add_stream("libx264", rate=painter.fps, options={"preset": "veryfast"})
    else:
        stream = container.add_stream("mpeg4", rate=painter.fps)
    stream.width, stream.height = painter.width, painter.height
    stream.pix_fmt = "yuv420p"
    # Frame threads, as camera and streaming encoders use: PyAV's default (slice threads) makes
    # x264 cut every frame into slices, which would flatter decoders that use slice threads.
    stream.thread_type = "FRAME"
    return stream


_WORDS = ("gg", "lol", "wow", "nice", "what", "clip it", "no way", "well, well", "pog", "hype")
_USERS = tuple(f"viewer{n}" for n in range(40))
Message = tuple[float, str, str]


def make_chat(
    path: Path,
    *,
    duration_seconds: float,
    bursts_at: Sequence[float],
    format: ChatFormat = "jsonl",
    base_rate: float = 0.3,
    burst_rate: float = 8.0,
    burst_seconds: float = 5.0,
    bad_lines: int = 0,
    seed: int = 0,
) -> None:
    """Write a chat log: a steady trickle of messages, bursts at `bursts_at`, some bad lines."""
    rng = np.random.default_rng(seed)
    times = _message_times(rng, duration_seconds, bursts_at, base_rate, burst_rate, burst_seconds)
    rows: list[Message | str] = [
        (t, str(rng.choice(_USERS)), str(rng.choice(_WORDS))) for t in times
    ]
    bad = _bad_lines(format, duration_seconds)
    for n in range(bad_lines):
        rows.insert(int(rng.integers(0, len(rows) + 1)), bad[n % len(bad)])
    with path.open("w", encoding="utf-8", newline="") as file:
        if format == "csv":
            file.write("timestamp_seconds,user,text\n")
        file.writelines(_line(row, format) + "\n" for row in rows)


def _message_times(
    rng: np.random.Generator,
    duration: float,
    bursts_at: Sequence[float],
    base_rate: float,
    burst_rate: float,
    burst_seconds: float,
) -> list[float]:
    """Arrival times of a Poisson trickle plus a Poisson flood during each burst."""
    parts = [rng.uniform(0.0, duration, rng.poisson(base_rate * duration))]
    for start in bursts_at:
        end = min(start + burst_seconds, duration)
        parts.append(rng.uniform(start, end, rng.poisson(burst_rate * (end - start))))
    return sorted(round(float(t), 3) for t in np.concatenate(parts))


def _bad_lines(format: ChatFormat, duration: float) -> list[str]:
    """Lines a chat reader must skip: each is broken in a different way."""
    late = duration + 1000.0
    if format == "csv":
        return ["just some words", "-4.0,viewer1,early", "soon,viewer2,hi", f"{late},v,late"]
    return [
        "this is not json",
        json.dumps({"user": "viewer1", "text": "no time"}),
        json.dumps({"timestamp_seconds": -4.0, "user": "viewer2", "text": "early"}),
        json.dumps({"timestamp_seconds": "soon", "user": "viewer3", "text": "when"}),
        json.dumps({"timestamp_seconds": late, "user": "viewer4", "text": "late"}),
        "[1, 2, 3]",
    ]


def _line(row: Message | str, format: ChatFormat) -> str:
    if isinstance(row, str):
        return row
    stamp, user, text = row
    if format == "jsonl":
        return json.dumps({"timestamp_seconds": stamp, "user": user, "text": text})
    line = io.StringIO()
    csv.writer(line, lineterminator="").writerow([stamp, user, text])
    return line.getvalue()
