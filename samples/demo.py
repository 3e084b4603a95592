"""The demo recordings: a 90-second video with hard cuts, loud bursts and a chat log with bursts
of its own, so its highlights are known in advance; and, for transcription, real read speech
(LibriVox, from a Debian package: samples.speech) with words in it to look for."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from samples.media import make_chat, make_video
from samples.speech import join_recordings, librivox

# Said in the speech demo (twice each per round of the LibriVox reading): its keywords.
SPEECH_KEYWORDS = ["amiable", "selfish"]


@dataclass(frozen=True)
class DemoSample:
    duration_seconds: float = 90.0
    cuts_at: list[float] = field(default_factory=lambda: [14.0, 31.0, 47.0, 66.0, 80.0])
    bursts_at: list[float] = field(default_factory=lambda: [20.0, 52.0, 73.0])
    chat_bursts_at: list[float] = field(default_factory=lambda: [21.0, 74.0])


def write_demo(directory: Path, sample: DemoSample = DemoSample()) -> tuple[Path, Path]:
    """Write the demo video (640x360, H.264 + AAC) and its chat log (JSON lines) into
    `directory`; return their paths."""
    video = directory / "demo-stream.mp4"
    chat = directory / "demo-chat.jsonl"
    make_video(
        video,
        duration_seconds=sample.duration_seconds,
        cuts_at=sample.cuts_at,
        bursts_at=sample.bursts_at,
        size=(640, 360),
    )
    make_chat(
        chat,
        duration_seconds=sample.duration_seconds,
        bursts_at=sample.chat_bursts_at,
        format="jsonl",
    )
    return video, chat


def write_speech_demo(directory: Path, *, rounds: int = 3) -> Path:
    """Write the speech demo, the five LibriVox utterances `rounds` times over with a second's
    pause around each (about 30 s a round, 16 kHz mono WAV), into `directory`; return its path.
    The utterances are fetched with `apt-get download` the first time (PackageUnavailable if
    they cannot be)."""
    recordings = librivox(directory / "packages")
    path = directory / "demo-speech.wav"
    join_recordings(recordings * rounds, path)
    return path
