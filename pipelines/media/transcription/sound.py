"""A stretch of the recording's sound as recognisers take it: mono 16-bit PCM at their rate.

Like the loudness analysis, it reads only about the stretch: it seeks a little before it (a
decoder of compressed sound needs a frame or two to settle), places the sound by the first
frame's timestamp, and drops what comes before the stretch. Memory holds the stretch alone, at
most a transcription span and its overlaps (about 10 MB for five minutes at 16 kHz).
"""

from __future__ import annotations

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer

from jobs.contract.settings import MEDIA_SECONDS_CEILING
from pipelines.media.audio import LEAD_IN_SECONDS, SETTLE_SECONDS
from pipelines.media.decoding import Damage, audio_frames
from pipelines.media.models import Span
from pipelines.media.probe import (
    MediaSource,
    Progress,
    TimeCheck,
    first_audio,
    open_media,
    stream_start,
    unsupported,
)
from pipelines.media.spans import lead_ins, seek_before
from pipelines.media.transcription.engine import Pcm, Speech

# Progress is reported every this many frames.
_PROGRESS_FRAMES = 64


def read_speech(
    source: MediaSource,
    stretch: Span,
    *,
    sample_rate: int,
    max_seconds: float = MEDIA_SECONDS_CEILING,
    progress: Progress = lambda _fraction: None,
) -> Speech:
    """The first audio stream's sound within `stretch`, mono, 16-bit, at `sample_rate`."""
    for lead_in in lead_ins(stretch.start, LEAD_IN_SECONDS):
        with open_media(source) as container:
            stream = first_audio(container)
            if stream is None:
                raise unsupported("it has no audio stream")
            speech = _read(container, stream, stretch, lead_in, sample_rate, max_seconds, progress)
        if speech is not None:
            progress(1.0)
            return speech
    raise AssertionError("reading from the beginning always reaches the stretch")


def _read(
    container: InputContainer,
    stream: AudioStream,
    stretch: Span,
    lead_in: float | None,
    sample_rate: int,
    max_seconds: float,
    progress: Progress,
) -> Speech | None:
    """One attempt, seeking `lead_in` s before the stretch (None: from the beginning); None if
    the seek landed too late for the decoder to settle before the stretch."""
    origin = stream_start(stream)
    sought = lead_in is not None and seek_before(
        container, stream, origin + stretch.start - lead_in
    )
    resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
    clock = TimeCheck(max_seconds)
    chunks: list[Pcm] = []
    first_at: float | None = None
    for index, frame in enumerate(audio_frames(container, stream, Damage(origin))):
        at = None if frame.time is None else frame.time - origin
        if at is not None:
            clock.frame_at(at)
        if first_at is None:
            if sought and (at is None or at > stretch.start - SETTLE_SECONDS):
                return None
            first_at = at or 0.0
        chunks += _pcm(resampler.resample(frame))
        if at is not None and at >= stretch.end:
            break  # this frame starts past the stretch: the rest is another span's
        if index % _PROGRESS_FRAMES == 0 and at is not None and stretch.end > stretch.start:
            progress(max(0.0, (at - stretch.start) / (stretch.end - stretch.start)))
    chunks += _pcm(resampler.resample(None))
    decoded = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    first_at = first_at or 0.0
    skip = max(0, round((stretch.start - first_at) * sample_rate))
    keep = round((stretch.end - max(first_at, stretch.start)) * sample_rate)
    samples = decoded[skip : skip + keep].astype(np.int16, copy=False)
    return Speech(samples=samples, sample_rate=sample_rate, start=first_at + skip / sample_rate)


def _pcm(frames: list[av.AudioFrame]) -> list[Pcm]:
    """Resampled frames' samples (mono s16, so one row each) as flat arrays."""
    return [np.asarray(frame.to_ndarray(), dtype=np.int16).reshape(-1) for frame in frames]
