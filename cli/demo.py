"""`longrun demo`: a real media-analysis job on a recording made on the spot.

The sample is a 90-second video with hard cuts, loud bursts and a chat log with bursts of its
own, generated with PyAV and numpy, so the demo needs nothing downloaded and its highlights are
known in advance.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from cli.uploading import upload_file
from processor.pipelines.media.samples import make_chat, make_video


@dataclass(frozen=True)
class Sample:
    duration_seconds: float = 90.0
    cuts_at: list[float] = field(default_factory=lambda: [14.0, 31.0, 47.0, 66.0, 80.0])
    bursts_at: list[float] = field(default_factory=lambda: [20.0, 52.0, 73.0])
    chat_bursts_at: list[float] = field(default_factory=lambda: [21.0, 74.0])


def upload_sample(api_url: str, sample: Sample = Sample()) -> dict[str, str]:
    """Make the sample recording and chat log, upload both, return the job input."""
    with tempfile.TemporaryDirectory(prefix="longrun-demo-") as directory:
        video = Path(directory) / "demo-stream.mp4"
        chat = Path(directory) / "demo-chat.jsonl"
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
        return {
            "source": upload_file(api_url, video, "video/mp4"),
            "chat": upload_file(api_url, chat, "application/x-ndjson"),
        }
