"""Contact sheets for labelling cuts by eye: small frames of a recording in a grid, each with
its time (seconds from the first frame), as one PNG to look at.

    # a frame every half second, to find where the shots change
    .venv/bin/python -m benchmarks.real_media.contact_sheet FILE sheet.png --every 0.5
    # every frame within a stretch, to see whether a change is a cut and on which frame
    .venv/bin/python -m benchmarks.real_media.contact_sheet FILE sheet.png --between 8.5 9.5
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterator
from pathlib import Path

import av
from PIL import Image, ImageDraw

THUMB_WIDTH = 128
COLUMNS = 10
LABEL_HEIGHT = 12


def frames(path: Path) -> Iterator[tuple[float, Image.Image]]:
    """Every frame of the first video stream, small, with its time from the first frame."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        first: float | None = None
        for frame in container.decode(stream):
            if frame.time is None:
                continue
            first = frame.time if first is None else first
            height = max(2, round(THUMB_WIDTH * frame.height / max(frame.width, 1)))
            small = frame.reformat(width=THUMB_WIDTH, height=height, format="rgb24")
            yield frame.time - first, Image.fromarray(small.to_ndarray())


def chosen(
    path: Path, every: float | None, between: tuple[float, float] | None
) -> Iterator[tuple[float, Image.Image]]:
    """The frames a sheet shows: the first of each `every` seconds, or all `between` two times."""
    next_time = 0.0
    for time, picture in frames(path):
        if between is not None:
            if between[0] <= time <= between[1]:
                yield time, picture
            if time > between[1]:
                return
        elif every is not None and time >= next_time:
            yield time, picture
            next_time = (time // every + 1) * every


def sheet(pictures: list[tuple[float, Image.Image]], out: Path) -> None:
    """The pictures in rows of COLUMNS, each under its time."""
    width, height = pictures[0][1].size
    rows = math.ceil(len(pictures) / COLUMNS)
    canvas = Image.new("RGB", (COLUMNS * width, rows * (height + LABEL_HEIGHT)), "white")
    draw = ImageDraw.Draw(canvas)
    for index, (time, picture) in enumerate(pictures):
        x, y = (index % COLUMNS) * width, (index // COLUMNS) * (height + LABEL_HEIGHT)
        canvas.paste(picture, (x, y + LABEL_HEIGHT))
        draw.text((x + 2, y), f"{time:.3f}", fill="black")
    canvas.save(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--every", type=float, help="seconds between frames shown")
    parser.add_argument("--between", type=float, nargs=2, help="show every frame in this stretch")
    args = parser.parse_args()
    between = tuple(args.between) if args.between else None
    pictures = list(chosen(args.file, args.every or (None if between else 0.5), between))
    sheet(pictures, args.out)


if __name__ == "__main__":
    main()
