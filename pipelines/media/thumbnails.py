"""Thumbnails of highlights: a video frame, or for audio a picture of the loudness.

Both functions are synchronous and share nothing, so they can run side by side in threads.
"""

from __future__ import annotations

import io
import math

import numpy as np
from av.container import InputContainer
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation
from av.video.stream import VideoStream
from PIL import Image, ImageDraw

from pipelines.media.decoding import Damage, video_frames
from pipelines.media.models import AudioAnalysis, Span
from pipelines.media.probe import (
    MediaSource,
    first_video,
    open_media,
    stream_start,
    unsupported,
)

JPEG_QUALITY = 85
# The loudness picture spans -60 dBFS (bottom) to 0 dBFS (top): quieter is silence to the eye.
WAVE_FLOOR_LUFS = -60.0
BACKGROUND = (17, 20, 28)
GUIDE = (45, 52, 66)
WAVE_FILL = (46, 98, 160)
WAVE_EDGE = (120, 190, 255)


def video_thumbnail(source: MediaSource, at_seconds: float, width: int) -> bytes:
    """A JPEG, `width` pixels wide, of the first frame at or after `at_seconds`."""
    with open_media(source) as container:
        stream = first_video(container)
        if stream is None:
            raise unsupported("it has no video stream")
        frame = _frame_at(container, stream, at_seconds + stream_start(stream))
        height = _display_height(frame, stream, width)
        pixels = frame.to_ndarray(
            width=width, height=height, format="rgb24", interpolation=Interpolation.AREA
        )
    return _jpeg(Image.fromarray(pixels))


def _frame_at(container: InputContainer, stream: VideoStream, target: float) -> VideoFrame:
    """Seek to the keyframe before `target`, then decode up to it (or to the last frame)."""
    if stream.time_base is not None:
        container.seek(max(0, math.floor(target / stream.time_base)), stream=stream)
    last = None
    for frame in video_frames(container, stream, Damage()):
        if frame.time is not None and frame.time >= target - 1e-3:
            return frame
        last = frame
    if last is None:
        raise unsupported("no picture could be decoded")
    return last


def _display_height(frame: VideoFrame, stream: VideoStream, width: int) -> int:
    """The height that keeps the picture's shape as shown, pixels not always being square."""
    aspect = stream.sample_aspect_ratio or 1
    return max(1, round(width * frame.height / (frame.width * float(aspect))))


def waveform_thumbnail(audio: AudioAnalysis, span: Span, width: int) -> bytes:
    """A JPEG, `width` pixels wide and 16:9, of the loudness curve over `span`."""
    height = max(1, round(width * 9 / 16))
    image = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    for level in range(-12, int(WAVE_FLOOR_LUFS), -12):
        y = _y(level, height)
        draw.line([(0, y), (width - 1, y)], fill=GUIDE)
    tops = [_y(level, height) for level in column_levels(audio, span, width)]
    outline = list(enumerate(tops))
    draw.polygon([(0, height - 1), *outline, (width - 1, height - 1)], fill=WAVE_FILL)
    draw.line(outline, fill=WAVE_EDGE, width=max(1, width // 320))
    return _jpeg(image)


def column_levels(audio: AudioAnalysis, span: Span, columns: int) -> list[float]:
    """The loudest window under each pixel column of `span`."""
    window = audio.window_seconds
    first = min(int(span.start / window), max(len(audio.momentary_lufs) - 1, 0))
    last = max(first + 1, math.ceil(span.end / window))
    levels = np.asarray(audio.momentary_lufs[first:last] or [WAVE_FLOOR_LUFS], dtype=np.float64)
    # reduceat takes the max over each column's windows, or the one window a column falls in.
    starts = (np.arange(columns) * levels.size) // columns
    return [float(level) for level in np.maximum.reduceat(levels, starts)]


def _y(level: float, height: int) -> int:
    share = min(max(level / WAVE_FLOOR_LUFS, 0.0), 1.0)
    return round(share * (height - 1))


def _jpeg(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=JPEG_QUALITY)
    return buffer.getvalue()
