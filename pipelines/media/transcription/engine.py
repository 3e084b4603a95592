"""The one interface every transcription engine offers, and the setting that picks one.

An engine is given a stretch of the recording's sound as 16-bit mono PCM at the rate it asks for
(`Speech`), and returns the words it heard there, timed in the recording's seconds. It runs in a
worker thread and calls `progress(fraction)` as it goes: that call raises once the job is
cancelled or the stage stopped, which is how a long span stops within a moment.
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from jobs.contract.settings import Settings
from pipelines.media.transcription.models import Word

Progress = Callable[[float], None]
Pcm = npt.NDArray[np.int16]

# LONGRUN_TRANSCRIPTION_ENGINE -> the class ("module:name") built with the settings.
ENGINES = {
    "pocketsphinx": "pipelines.media.transcription.sphinx:PocketsphinxEngine",
    "google": "pipelines.media.transcription.google:GoogleSpeechEngine",
}


@dataclass(frozen=True)
class Speech:
    """Mono 16-bit PCM of a stretch of the recording, whose first sample lies at `start` s."""

    samples: Pcm
    sample_rate: int
    start: float

    @property
    def seconds(self) -> float:
        return len(self.samples) / self.sample_rate

    @property
    def end(self) -> float:
        return self.start + self.seconds


@dataclass(frozen=True)
class Recognition:
    """The words an engine heard in a stretch of sound, and what a paid recogniser billed for
    hearing them (USD; an embedded engine bills nothing: its cost is the processor's compute,
    which is counted anyway)."""

    words: list[Word]
    billed_usd: float = 0.0


class Engine(Protocol):
    """A speech recogniser: `name` and `language` (BCP-47) go into the transcript."""

    name: str
    language: str
    sample_rate: int

    def transcribe(self, speech: Speech, progress: Progress) -> Recognition:
        """The words heard in `speech`, in order, timed from the start of the recording."""
        ...


def engine_for(settings: Settings) -> Engine:
    """The engine LONGRUN_TRANSCRIPTION_ENGINE names, built once per process (loading a model
    takes a while, and each holds its own per-thread decoders)."""
    key = (settings.transcription_engine, settings.model_dump_json())
    with _lock:
        if key not in _engines:
            module_name, _, class_name = ENGINES[settings.transcription_engine].partition(":")
            engine_class = getattr(importlib.import_module(module_name), class_name)
            _engines[key] = engine_class(settings)
        return _engines[key]


_engines: dict[tuple[str, str], Engine] = {}
_lock = threading.Lock()
