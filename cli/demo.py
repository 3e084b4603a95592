"""`longrun demo`: a real media-analysis job on the demo recording, made on the spot and uploaded
through the API like any user's file."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import httpx

from cli.uploading import upload_file
from samples.demo import SPEECH_KEYWORDS, write_demo, write_speech_demo


def upload_sample(api: httpx.Client, *, speech: bool = False) -> dict[str, Any]:
    """Make the demo recording and chat log, upload both, return the job input; with `speech`,
    the read-speech recording instead, transcribed, with keywords to find."""
    with tempfile.TemporaryDirectory(prefix="longrun-demo-") as directory:
        if speech:
            recording = write_speech_demo(Path(directory))
            return {
                "source": upload_file(api, recording, "audio/wav"),
                "options": {"highlights": 3, "keywords": SPEECH_KEYWORDS},
            }
        video, chat = write_demo(Path(directory))
        return {
            "source": upload_file(api, video, "video/mp4"),
            "chat": upload_file(api, chat, "application/x-ndjson"),
            # The demo recording is generated noise and tones: there is nothing to transcribe.
            "options": {"transcribe": False},
        }
