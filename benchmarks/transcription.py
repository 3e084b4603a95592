"""Transcription: the embedded engine's accuracy on real recorded speech, and its speed.

- Accuracy: word error rate (jiwer) of PocketSphinx on the five LibriVox utterances Debian's
  pocketsphinx-testdata ships with their text (fetched with apt-get download; samples.speech),
  per file and over all of them (errors over all reference words).
- Speed: CPU seconds per second of sound (the real-time factor), per file and over all, counted
  over this process and its decoding process (PocketSphinx decodes in a process of its own),
  after a first transcription that starts that process and loads the models.
- With --minutes N: a recording of N minutes made of those utterances again and again, with
  pauses, transcribed span by span as the stage does (reading each span and its overlaps from
  the file, then joining): the real-time factor at length, and the peak memory of this process
  and of the decoding process, which stay those of one span however long the recording.

    .venv/bin/python -m benchmarks.transcription [--minutes 10] [--json benchmarks/out/t.json]
"""

from __future__ import annotations

import argparse
import itertools
import json
import multiprocessing
import os
import tempfile
import wave
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import jiwer
import numpy as np

from benchmarks.environment import process_group_cpu_seconds
from benchmarks.media import peak_rss_mib
from jobs.contract.settings import Settings
from pipelines.media.models import MediaInfo, Span
from pipelines.media.spans import plan_spans
from pipelines.media.stages import TRANSCRIPT_OVERLAP_SECONDS
from pipelines.media.transcription.engine import Engine, engine_for
from pipelines.media.transcription.models import TranscriptSpan
from pipelines.media.transcription.pieces import split_speech
from pipelines.media.transcription.reconcile import join_spans
from pipelines.media.transcription.sound import read_speech
from samples.speech import SAMPLE_RATE, Recording, librivox


@dataclass(frozen=True)
class FileResult:
    name: str
    seconds: float
    cpu_seconds: float
    real_time_factor: float
    word_error_rate: float
    reference: str
    heard: str


def transcribe_file(engine: Engine, recording: Recording) -> FileResult:
    speech = read_speech(recording.path, Span(start=0.0, end=1e6), sample_rate=SAMPLE_RATE)
    started = cpu_seconds()
    words = engine.transcribe(speech, lambda _done: None).words
    cpu = cpu_seconds() - started
    heard = " ".join(word.text for word in words)
    return FileResult(
        name=recording.name,
        seconds=round(speech.seconds, 2),
        cpu_seconds=round(cpu, 2),
        real_time_factor=round(cpu / speech.seconds, 3),
        word_error_rate=round(jiwer.wer(recording.text, heard), 3),
        reference=recording.text,
        heard=heard,
    )


def cpu_seconds() -> float:
    """CPU time so far of this process and its live children (the decoding process): they
    share its process group."""
    return process_group_cpu_seconds(os.getpgrp())


def long_recording(recordings: list[Recording], path: Path, minutes: float) -> float:
    """Write the utterances over and over, a second's pause after each, for `minutes`."""
    pause = np.zeros(SAMPLE_RATE, dtype=np.int16).tobytes()
    clips = []
    for recording in recordings:
        with wave.open(str(recording.path)) as source:
            clips.append(source.readframes(source.getnframes()) + pause)
    written = 0
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(SAMPLE_RATE)
        for clip in itertools.cycle(clips):
            if written >= minutes * 60 * SAMPLE_RATE:
                break
            out.writeframes(clip)
            written += len(clip) // 2
    return written / SAMPLE_RATE


def transcribe_long(engine: Engine, path: Path, duration: float) -> dict[str, Any]:
    media = MediaInfo(format_name="wav", duration_seconds=duration, has_audio=True, has_video=False)
    spans = plan_spans(media, target_seconds=Settings().transcript_span_seconds)
    started = cpu_seconds()
    parts = []
    for span in spans:
        heard = Span(
            start=max(0.0, span.start - TRANSCRIPT_OVERLAP_SECONDS),
            end=min(duration, span.end + TRANSCRIPT_OVERLAP_SECONDS),
        )
        speech = read_speech(path, heard, sample_rate=SAMPLE_RATE)
        words = [
            word
            for piece in split_speech(speech, Settings().transcript_piece_seconds)
            for word in engine.transcribe(piece, lambda _done: None).words
        ]
        parts.append(TranscriptSpan(span=span, heard=heard, engine="", language="", words=words))
    words, _gaps = join_spans(parts, duration)
    cpu = cpu_seconds() - started
    return {
        "minutes": round(duration / 60, 1),
        "spans": len(spans),
        "words": len(words),
        "cpu_seconds": round(cpu, 1),
        "real_time_factor": round(cpu / duration, 3),
        "peak_rss_mib": peak_rss_mib(os.getpid()),
        "decoder_peak_rss_mib": [
            peak_rss_mib(child.pid) for child in multiprocessing.active_children() if child.pid
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=0, help="also a long recording")
    parser.add_argument("--json", type=Path, help="also write the results here, as JSON")
    args = parser.parse_args()
    engine = engine_for(Settings())
    with tempfile.TemporaryDirectory(prefix="longrun-transcription-") as directory:
        recordings = librivox(Path(directory))
        transcribe_file(engine, recordings[0])  # starts the decoding process, loads the models
        files = [transcribe_file(engine, recording) for recording in recordings]
        seconds = sum(f.seconds for f in files)
        cpu = sum(f.cpu_seconds for f in files)
        result: dict[str, Any] = {
            "engine": engine.name,
            "files": [asdict(f) for f in files],
            "overall": {
                "seconds": round(seconds, 2),
                "words": sum(len(f.reference.split()) for f in files),
                "word_error_rate": round(
                    jiwer.wer([f.reference for f in files], [f.heard for f in files]), 3
                ),
                "real_time_factor": round(cpu / seconds, 3),
            },
        }
        if args.minutes > 0:
            path = Path(directory) / "long.wav"
            duration = long_recording(recordings, path, args.minutes)
            result["long"] = transcribe_long(engine, path, duration)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
