"""What a player makes of a clip (its codecs, and when each picture and sound starts), and what
the source held (its keyframes, its pictures), for the clip tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Decoded:
    """What a player gets from a file: its codecs, and when each picture and sound starts."""

    format: str
    video_codec: str | None
    audio_codec: str | None
    picture_times: list[float]
    sound: list[tuple[float, float]]  # (start, seconds) of each sound frame

    @property
    def sound_end(self) -> float:
        return max(start + seconds for start, seconds in self.sound)


def decode(path: Path) -> Decoded:
    with av.open(str(path)) as container:
        video = container.streams.video[0] if container.streams.video else None
        audio = container.streams.audio[0] if container.streams.audio else None
        pictures: list[float] = []
        sound: list[tuple[float, float]] = []
        for frame in container.decode(*container.streams):
            assert frame.time is not None
            if isinstance(frame, av.VideoFrame):
                pictures.append(frame.time)
            elif isinstance(frame, av.AudioFrame):
                sound.append((frame.time, frame.samples / frame.sample_rate))
        return Decoded(
            format=container.format.name,
            video_codec=video.codec.canonical_name if video else None,
            audio_codec=audio.codec.canonical_name if audio else None,
            picture_times=sorted(pictures),
            sound=sound,
        )


def keyframe_times(path: Path) -> list[float]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return sorted(
            float(packet.pts * packet.time_base)
            for packet in container.demux(stream)
            if packet.is_keyframe and packet.pts is not None and packet.time_base is not None
        )


def picture_at(path: Path, seconds: float) -> npt.NDArray[np.uint8]:
    """The decoded picture shown at `seconds`, as numbers."""
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            if frame.time is not None and frame.time >= seconds - 1e-3:
                picture = np.asarray(frame.to_ndarray(format="yuv420p"), dtype=np.uint8)
                return picture
    raise AssertionError(f"no picture at {seconds} s")
