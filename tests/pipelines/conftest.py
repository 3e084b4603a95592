"""Real recorded speech for the transcription tests, fetched once a session (samples.speech)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from samples.packages import PackageUnavailable
from samples.speech import Recording, join_recordings, librivox


@dataclass(frozen=True)
class Spoken:
    """The LibriVox utterances joined into one recording, a second's pause around each."""

    path: Path
    recordings: list[Recording]
    places: list[tuple[float, float]]

    @property
    def text(self) -> str:
        return " ".join(recording.text for recording in self.recordings)


@pytest.fixture(scope="session")
def spoken(tmp_path_factory: pytest.TempPathFactory) -> Spoken:
    directory = tmp_path_factory.mktemp("speech")
    try:
        recordings = librivox(directory)
    except PackageUnavailable as error:
        pytest.skip(f"no recorded speech to test transcription with: {error}")
    path = directory / "librivox.wav"
    places = join_recordings(recordings, path)
    return Spoken(path, recordings, places)
