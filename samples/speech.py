"""Real recorded speech with known text, for the transcription tests and benchmark.

Debian's `pocketsphinx-testdata` package ships five utterances from the LibriVox recording of
Jane Austen's "Sense and Sensibility" (chapter 1, read by a volunteer; LibriVox recordings are in
the public domain), 16 kHz mono WAV, with their transcription. They are fetched by name with
`apt-get download` when needed (`samples.packages`); nothing of them is committed.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from samples.packages import debian_package

PACKAGE = "pocketsphinx-testdata"
LIBRIVOX = Path("usr/share/pocketsphinx/test/data/librivox")
SAMPLE_RATE = 16000


@dataclass(frozen=True)
class Recording:
    """One recorded utterance and the words it says (lower case, no punctuation)."""

    name: str
    path: Path
    text: str

    @property
    def seconds(self) -> float:
        with wave.open(str(self.path)) as file:
            frames, rate = int(file.getnframes()), int(file.getframerate())
        return frames / rate


def librivox(directory: Path) -> list[Recording]:
    """The LibriVox utterances, fetched into `directory` unless they are there already."""
    data = debian_package(PACKAGE, directory) / LIBRIVOX
    recordings = []
    for line in (data / "transcription").read_text().splitlines():
        text, _, name = line.rpartition("(")
        name = name.strip(") ")
        words = [w for w in text.split() if w not in ("<s>", "</s>")]
        recordings.append(Recording(name, data / f"{name}.wav", " ".join(words)))
    return recordings


def join_recordings(
    recordings: list[Recording], path: Path, *, pause_seconds: float = 1.0
) -> list[tuple[float, float]]:
    """Write the recordings one after another into one WAV, a pause of silence before each and
    after the last; where each one lies in it (seconds)."""
    pause = np.zeros(round(pause_seconds * SAMPLE_RATE), dtype=np.int16)
    places = []
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        position = 0
        for recording in recordings:
            with wave.open(str(recording.path)) as source:
                if (source.getframerate(), source.getnchannels()) != (SAMPLE_RATE, 1):
                    raise ValueError(f"{recording.name} is not 16 kHz mono")
                samples = source.readframes(source.getnframes())
            out.writeframes(pause.tobytes())
            start = position + len(pause)
            position = start + len(samples) // 2
            places.append((start / SAMPLE_RATE, position / SAMPLE_RATE))
            out.writeframes(samples)
        out.writeframes(pause.tobytes())
    return places
