"""What the scene analysis measures of a picture, cheaply enough to do it often.

Every decoded frame gets a signature: its brightness averaged over a coarse grid of blocks, read
straight from the luma plane where the frame has one (no conversion of the whole picture). The
block average smooths grain and film noise away, so consecutive signatures differ little within
a shot and a lot across a cut, which places a cut on its first new frame.

A sampled frame also gets a look: a small colour picture's hue, saturation and value histograms
and its brightness. Two looks differ by how much their colours moved (histograms: robust to
motion) and how much their brightness moved pixel by pixel (catches cuts between shots of the
same palette).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from av.video.frame import VideoFrame
from av.video.reformatter import Interpolation

Picture = npt.NDArray[np.float32]

# A signature is this many blocks across and down, each the mean of at least about
# `_BLOCK_READS` squared luma pixels (every few pixels on large pictures, to stay cheap).
SIGNATURE_COLUMNS = 32
SIGNATURE_ROWS = 18
_BLOCK_READS = 8
# Pixel formats whose first plane is 8-bit luma, row by row.
_LUMA_FIRST = {
    "yuv420p",
    "yuvj420p",
    "yuv422p",
    "yuvj422p",
    "yuv444p",
    "yuvj444p",
    "nv12",
    "nv21",
    "yuv410p",
    "yuv411p",
    "gray",
    "yuv440p",
    "yuvj440p",
    "yuva420p",
}
# A look is made from a picture this many pixels wide.
LOOK_WIDTH = 64
_HUE_BINS, _SATURATION_BINS, _VALUE_BINS = 16, 8, 16


def signature(frame: VideoFrame) -> Picture:
    """The frame's brightness averaged over a SIGNATURE_COLUMNS x SIGNATURE_ROWS grid."""
    if frame.format.name in _LUMA_FIRST:
        plane = frame.planes[0]
        rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
        stride = max(
            1,
            min(
                frame.height // (SIGNATURE_ROWS * _BLOCK_READS),
                frame.width // (SIGNATURE_COLUMNS * _BLOCK_READS),
            ),
        )
        luma = rows[: frame.height : stride, : frame.width : stride]
    else:
        small = frame.reformat(
            width=SIGNATURE_COLUMNS * 4,
            height=SIGNATURE_ROWS * 4,
            format="gray",
            interpolation=Interpolation.AREA,
        )
        luma = np.asarray(small.to_ndarray(), dtype=np.uint8)
    return _block_means(luma)


def _block_means(luma: npt.NDArray[np.uint8]) -> Picture:
    rows = max(1, min(SIGNATURE_ROWS, luma.shape[0]))
    columns = max(1, min(SIGNATURE_COLUMNS, luma.shape[1]))
    down, across = luma.shape[0] // rows, luma.shape[1] // columns
    cropped = luma[: rows * down, : columns * across].astype(np.float32)
    means: Picture = cropped.reshape(rows, down, columns, across).mean(axis=(1, 3))
    return means


def jump(before: Picture, after: Picture) -> float:
    """How far apart two signatures are: mean absolute brightness difference, 0 to 255."""
    return float(np.abs(after - before).mean())


@dataclass(frozen=True)
class Look:
    """A sampled picture's colours (normalised histograms) and brightness."""

    histograms: tuple[Picture, Picture, Picture]
    value: Picture

    @property
    def brightness(self) -> float:
        return float(self.value.mean())


def look(frame: VideoFrame, width: int = LOOK_WIDTH) -> Look:
    """The colours and brightness of a copy of the frame `width` pixels wide."""
    height = max(2, round(width * frame.height / max(frame.width, 1)))
    rgb = frame.reformat(
        width=width, height=height, format="rgb24", interpolation=Interpolation.AREA
    ).to_ndarray()
    hue, saturation, value = _hsv(rgb.astype(np.float32))
    count = float(value.size)
    histograms = (
        # Hue counts as much as the colour is saturated: greys have no meaningful hue.
        np.histogram(hue, _HUE_BINS, (0.0, 1.0), weights=saturation)[0] / count,
        np.histogram(saturation, _SATURATION_BINS, (0.0, 1.0))[0] / count,
        np.histogram(value, _VALUE_BINS, (0.0, 255.0))[0] / count,
    )
    return Look(histograms=tuple(h.astype(np.float32) for h in histograms), value=value)  # type: ignore[arg-type]


def _hsv(rgb: Picture) -> tuple[Picture, Picture, Picture]:
    red, green, blue = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    value = rgb.max(axis=2)
    spread = value - rgb.min(axis=2)
    saturation = np.where(value > 0, spread / np.maximum(value, 1.0), 0.0)
    safe = np.maximum(spread, 1e-6)
    hue = np.where(
        value == red,
        (green - blue) / safe,
        np.where(value == green, 2.0 + (blue - red) / safe, 4.0 + (red - green) / safe),
    )
    hue = (hue / 6.0) % 1.0
    return hue.astype(np.float32), saturation.astype(np.float32), value.astype(np.float32)


def difference(before: Look, after: Look) -> float:
    """How much the picture changed between two looks, 0 (same) to 100: half from the colour
    histograms (half the L1 distance, averaged over hue, saturation and value), half from the
    mean brightness change of the pixels (a quarter of the range counts in full)."""
    colours = np.mean(
        [
            0.5 * float(np.abs(a - b).sum())
            for a, b in zip(before.histograms, after.histograms, strict=True)
        ]
    )
    if before.value.shape != after.value.shape:
        return 100.0  # The picture's size changed: a new stream of pictures.
    pixels = min(1.0, float(np.abs(after.value - before.value).mean()) / 64.0)
    return round(50.0 * float(colours) + 50.0 * pixels, 4)
