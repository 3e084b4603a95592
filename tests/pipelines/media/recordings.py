"""Recordings the span tests need besides `samples.media`'s: video with a keyframe every couple of
seconds (as streaming encoders make it), MP4 with its index at the end, and Ogg Opus."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from samples.media import AudioPlan, ScenePainter

AUDIO_RATE = 8000


def sound(plan: AudioPlan, duration_seconds: float, layout: str) -> Iterator[av.AudioFrame]:
    """The planned sound a second at a time, as frames."""
    step = plan.sample_rate
    total = round(duration_seconds * plan.sample_rate)
    for first in range(0, total, step):
        samples = plan.chunk(first, min(step, total - first))
        frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout=layout)
        frame.sample_rate, frame.pts = plan.sample_rate, first
        frame.time_base = Fraction(1, plan.sample_rate)
        yield frame


def make_vod(
    path: Path,
    *,
    duration_seconds: float,
    cuts_at: Sequence[float],
    bursts_at: Sequence[float] = (),
    quiet_spans: Sequence[tuple[float, float]] = (),
    fps: int = 10,
    size: tuple[int, int] = (64, 36),
    keyframe_seconds: float = 2.0,
) -> Path:
    """H.264 video with a keyframe every `keyframe_seconds` and AAC sound, in .mp4 (index first)
    or .mkv, with hard cuts, loud bursts and digital silences at the given times."""
    painter = ScenePainter(size=size, fps=fps, cuts_at=cuts_at, seed=1)
    plan = AudioPlan(
        bursts_at=bursts_at,
        burst_seconds=2.0,
        quiet_spans=quiet_spans,
        sample_rate=AUDIO_RATE,
        channels=1,
        seed=1,
    )
    options = {"movflags": "faststart"} if path.suffix == ".mp4" else {}
    gop = str(round(keyframe_seconds * fps))
    with av.open(str(path), "w", container_options=options) as container:
        video = container.add_stream(
            "libx264", rate=fps, options={"g": gop, "keyint_min": gop, "preset": "veryfast"}
        )
        video.width, video.height, video.pix_fmt = size[0], size[1], "yuv420p"
        audio = container.add_stream("aac", rate=AUDIO_RATE)
        audio.layout = "mono"
        sounds = sound(plan, duration_seconds, "mono")
        for index in range(round(duration_seconds * fps)):
            container.mux(video.encode(painter.frame(index)))
            if index % fps == 0:
                container.mux(audio.encode(next(sounds)))
        container.mux(video.encode(None))
        container.mux(audio.encode(None))
    return path


def make_slideshow(
    path: Path, *, duration_seconds: float, every_seconds: int, cuts_at: Sequence[float]
) -> Path:
    """Motion JPEG in Matroska with one picture every `every_seconds` (a slide deck, a
    security camera): sparser than any lead-in."""
    painter = ScenePainter(size=(64, 36), fps=1, cuts_at=cuts_at, seed=3)
    with av.open(str(path), "w", format="matroska") as container:
        stream = container.add_stream("mjpeg", rate=1)
        stream.width, stream.height, stream.pix_fmt = 64, 36, "yuvj420p"
        stream.codec_context.time_base = Fraction(1, 1)
        for second in range(0, round(duration_seconds), every_seconds):
            container.mux(stream.encode(painter.frame(second)))
        container.mux(stream.encode(None))
    return path


def index_last(source: Path, target: Path) -> Path:
    """A copy of an MP4 with its index (moov) after the media, as a camera or OBS writes it."""
    with av.open(str(source)) as original, av.open(str(target), "w") as copy:
        streams = {s.index: copy.add_stream_from_template(s) for s in original.streams}
        for packet in original.demux():
            if packet.dts is not None:
                packet.stream = streams[packet.stream.index]
                copy.mux(packet)
    return target


def make_opus(
    path: Path,
    *,
    duration_seconds: float,
    bursts_at: Sequence[float],
    quiet_spans: Sequence[tuple[float, float]] = (),
) -> Path:
    """Opus in Ogg (a podcast's format), mono at 16 kHz, with bursts and digital silences."""
    plan = AudioPlan(
        bursts_at=bursts_at,
        burst_seconds=2.0,
        quiet_spans=quiet_spans,
        sample_rate=16000,
        channels=1,
        seed=2,
    )
    with av.open(str(path), "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=16000)
        stream.layout = "mono"
        for frame in sound(plan, duration_seconds, "mono"):
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def loudness_gap(first: list[float], second: list[float]) -> float:
    """The largest difference between two loudness series of one length, in dB."""
    assert len(first) == len(second)
    return float(np.max(np.abs(np.subtract(first, second)), initial=0.0))
