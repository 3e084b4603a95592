"""What the scene analysis measures of a picture, cheaply enough to do it often.

Every decoded frame gets a signature: its brightness averaged over a coarse grid of blocks, read
straight from the luma plane where the frame has one (no conversion of the whole picture). The
block average smooths grain and film noise away, so consecutive signatures differ little within
a shot and a lot across a cut, which places a cut on its first new frame.

A sampled frame also gets a look: histograms of its luma and both chroma planes, and a small
copy of its luma, read from every few pixels of the planes as decoded (a conversion only for
pixel formats that are not planar YUV). Two looks differ by how much their colours moved
(histograms: robust to motion) and how much their brightness moved pixel by pixel (catches
cuts between shots of the same palette).
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
_BLOCK_READS = 4
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
# A look is made from about this many pixels across.
LOOK_WIDTH = 64
# Pixel formats whose three planes are luma, blue and red chroma, 8 bits each.
_PLANAR_YUV = {
    "yuv420p",
    "yuvj420p",
    "yuv422p",
    "yuvj422p",
    "yuv444p",
    "yuvj444p",
    "yuv410p",
    "yuv411p",
    "yuv440p",
    "yuvj440p",
}
_LUMA_BINS, _CHROMA_BINS = 16, 8


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
    """A sampled picture's colours (normalised histograms of luma and both chroma planes) and
    its brightness, small."""

    histograms: tuple[Picture, Picture, Picture]
    luma: Picture


def look(frame: VideoFrame, width: int = LOOK_WIDTH) -> Look:
    """The colours and brightness of the frame, read from about `width` pixels across."""
    if frame.format.name not in _PLANAR_YUV:
        height = max(2, round(width * frame.height / max(frame.width, 1)))
        frame = frame.reformat(width=width, height=height + height % 2, format="yuv420p")
    luma, blue, red = (_plane(frame, index, width) for index in range(3))
    histograms = (
        _histogram(luma, _LUMA_BINS),
        _histogram(blue, _CHROMA_BINS),
        _histogram(red, _CHROMA_BINS),
    )
    return Look(histograms=histograms, luma=luma.astype(np.float32))


def _plane(frame: VideoFrame, index: int, width: int) -> npt.NDArray[np.uint8]:
    """Every few pixels of one plane, about `width` (scaled to the plane's width) across."""
    plane = frame.planes[index]
    rows = np.frombuffer(memoryview(plane), np.uint8).reshape(-1, plane.line_size)
    stride = max(1, round(frame.width / width))
    return rows[: plane.height : stride, : plane.width : stride]


def _histogram(values: npt.NDArray[np.uint8], bins: int) -> Picture:
    counts = np.bincount((values >> (8 - bins.bit_length() + 1)).ravel(), minlength=bins)
    histogram: Picture = (counts / max(values.size, 1)).astype(np.float32)
    return histogram


def difference(before: Look, after: Look) -> float:
    """How much the picture changed between two looks, 0 (same) to 100: half from the colour
    histograms (half the L1 distance, averaged over luma and both chroma planes), half from the
    mean brightness change of the pixels (a quarter of the range counts in full)."""
    colours = np.mean(
        [
            0.5 * float(np.abs(a - b).sum())
            for a, b in zip(before.histograms, after.histograms, strict=True)
        ]
    )
    if before.luma.shape != after.luma.shape:
        return 100.0  # The picture's size changed: a new stream of pictures.
    pixels = min(1.0, float(np.abs(after.luma - before.luma).mean()) / 64.0)
    return round(50.0 * float(colours) + 50.0 * pixels, 4)
