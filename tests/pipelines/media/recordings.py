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


def make_footage(
    path: Path,
    *,
    duration_seconds: float,
    shots_at: Sequence[tuple[float, float]],
    fps: int = 25,
    size: tuple[int, int] = (160, 90),
    shake_pixels: float = 0.0,
    seed: int = 5,
) -> Path:
    """H.264 footage of textured scenes a camera pans over, shaking by about `shake_pixels`
    a frame as a hand-held one does. Each of `shots_at` (start, end) begins a new scene: a hard
    cut on the first frame at or after `start` if `end` equals it, else a dissolve from the
    scene before over that stretch."""
    rng = np.random.default_rng(seed)
    width, height = size
    levels = [70, 170, 110, 200, 60, 150]
    scenes = [_scene(rng, width, height, levels[i % len(levels)]) for i in range(len(shots_at) + 1)]
    with av.open(str(path), "w") as container:
        video = container.add_stream("libx264", rate=fps, options={"preset": "veryfast"})
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        for index in range(round(duration_seconds * fps)):
            time = index / fps
            shake = rng.normal(0.0, shake_pixels, 2) if shake_pixels else np.zeros(2)
            x, y = (round(v) for v in (width / 2 + 8 * time + shake[0], height / 2 + shake[1]))
            pictures = [scene[:, y : y + height, x : x + width] for scene in scenes]
            frame = av.VideoFrame.from_ndarray(
                _blend(pictures, shots_at, time).transpose(1, 2, 0), format="rgb24"
            )
            frame.pts, frame.time_base = index, Fraction(1, fps)
            container.mux(video.encode(frame.reformat(format="yuv420p")))
        container.mux(video.encode(None))
    return path


def _scene(rng: np.random.Generator, width: int, height: int, level: float) -> np.ndarray:
    """A random landscape of soft shapes around brightness `level`, in one tint, large enough
    to pan and shake over."""
    from scipy.ndimage import gaussian_filter

    noise = gaussian_filter(rng.normal(0.0, 1.0, (3 * height, 3 * width)), height / 6)
    texture = level + 60 * noise / max(float(np.abs(noise).max()), 1e-9)
    tint = rng.uniform(0.8, 1.2, 3)[:, np.newaxis, np.newaxis]
    return np.clip(texture[np.newaxis] * tint, 0, 255)


def _blend(
    pictures: list[np.ndarray], shots_at: Sequence[tuple[float, float]], time: float
) -> np.ndarray:
    shown = sum(1 for start, _ in shots_at if time >= start)
    picture = pictures[shown]
    if shown and time < shots_at[shown - 1][1]:
        start, end = shots_at[shown - 1]
        weight = (time - start) / (end - start)
        picture = weight * picture + (1 - weight) * pictures[shown - 1]
    return np.ascontiguousarray(picture.astype(np.uint8))
