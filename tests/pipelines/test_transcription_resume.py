"""A transcription item saves its words after each piece of its span: one too slow for a
delivery's time budget hands on to a continuation that resumes after the last piece saved
(without spending an attempt), one whose processor is killed resumes there in the next attempt,
and both end with the very words an uninterrupted run hears."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from google.cloud import firestore

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus
from jobs.contract.settings import Settings
from pipelines.media.models import Span
from pipelines.media.transcription.engine import engine_for
from pipelines.media.transcription.models import Word
from pipelines.media.transcription.pieces import split_speech
from pipelines.media.transcription.sound import read_speech
from samples.speech import join_recordings
from tests.pipelines.conftest import Spoken
from tests.support import JobsWatcher, log_lines, run_document, submit_media, wait_until

# A minute and a half of speech in pieces of about 4 s (a LibriVox sentence or so each), under a
# budget that holds a few pieces: recognising it takes 27-54 s of CPU here (a real-time factor
# of 0.3-0.6), and still 13 s on a machine twice as fast, so the item needs two deliveries or
# more. A delivery that saves no piece (its recogniser's start and the reading come first, slow
# on a loaded machine) spends an attempt: there are enough for that.
PIECE_SECONDS = "4"
BUDGET_SECONDS = "10"
MAX_ATTEMPTS = "10"
WAIT = 600.0


def uninterrupted(path: Path, duration: float) -> list[Word]:
    """The item's words as one delivery hears them: the same stretch, pieces and engine."""
    engine = engine_for(Settings())
    speech = read_speech(path, Span(start=0.0, end=duration), sample_rate=engine.sample_rate)
    words: list[Word] = []
    for piece in split_speech(speech, float(PIECE_SECONDS)):
        words += engine.transcribe(piece, lambda _done: None).words
    return words


def heard_as_uninterrupted(
    db: firestore.Client, stack: Stack, job_id: str, transcript: dict[str, Any], path: Path
) -> list[Word]:
    """The job's transcript words, checked to be those of an uninterrupted run: nothing lost or
    heard twice."""
    heard = [Word(**word) for segment in transcript["segments"] for word in segment["words"]]
    duration = run_document(db, stack, job_id, "probe")["output"]["duration_seconds"]
    assert heard == uninterrupted(path, duration)
    return heard


def _span_lines(stack: Stack, job_id: str, message: str) -> list[dict[str, Any]]:
    lines = log_lines(stack, job_id, message)
    return [line for line in lines if line["stage"] == "transcribe" and "item" in line]


@pytest.mark.timeout(2 * WAIT)
def test_a_span_slower_than_its_budget_resumes_from_its_checkpoints_to_the_same_words(
    make_stack: Callable[..., Stack], db: firestore.Client, spoken: Spoken, tmp_path: Path
) -> None:
    stack = make_stack(
        LONGRUN_STAGE_TIME_BUDGET_SECONDS=BUDGET_SECONDS,
        LONGRUN_TRANSCRIPT_PIECE_SECONDS=PIECE_SECONDS,
        LONGRUN_MAX_ATTEMPTS=MAX_ATTEMPTS,
    )
    longer = tmp_path / "thrice.wav"
    join_recordings(spoken.recordings * 3, longer)  # 90 s: one span, in about 15 pieces
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_media(api, source=upload_file(api, longer, "audio/wav"))
        final = watcher.wait_terminal(job_id, timeout=WAIT)
        transcript = api.get(f"/v1/jobs/{job_id}/artifacts/transcript.json").json()
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED, final.error
    heard = heard_as_uninterrupted(db, stack, job_id, transcript, longer)
    continued = [
        line for line in _span_lines(stack, job_id, "stage ended") if line["outcome"] == "continued"
    ]
    resumed = _span_lines(stack, job_id, "span resumed")
    assert continued, "the span fitted in one delivery: nothing was resumed"
    assert len(resumed) >= len(continued)
    assert all(0 < line["pieces_done"] < line["pieces"] for line in resumed), resumed
    item = run_document(db, stack, job_id, "transcribe~0")
    # Each continuation was a delivery of its own, and none spent an attempt.
    assert item["deliveries"] >= item["attempts"] + len(continued)
    assert len(heard) > 120


@pytest.mark.timeout(2 * WAIT)
def test_a_span_whose_processor_is_killed_after_a_piece_resumes_there_to_the_same_words(
    make_stack: Callable[..., Stack], db: firestore.Client, spoken: Spoken, tmp_path: Path
) -> None:
    # A lease that a dead processor gives up within seconds.
    stack = make_stack(
        LONGRUN_TRANSCRIPT_PIECE_SECONDS=PIECE_SECONDS,
        LONGRUN_LEASE_SECONDS="10",
        LONGRUN_HEARTBEAT_SECONDS="2",
    )
    longer = tmp_path / "twice.wav"
    join_recordings(spoken.recordings * 2, longer)  # 60 s: one span, in about 10 pieces
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_media(api, source=upload_file(api, longer, "audio/wav"))

        def piece_saved() -> bool:
            cursor = run_document(db, stack, job_id, "transcribe~0").get("cursor")
            return isinstance(cursor, dict) and cursor["done"] >= 1

        wait_until(piece_saved, "a piece of the span saved", timeout=WAIT)
        stack.kill_processor()
        stack.start_processor()
        final = watcher.wait_terminal(job_id, timeout=WAIT)
        transcript = api.get(f"/v1/jobs/{job_id}/artifacts/transcript.json").json()
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED, final.error
    heard_as_uninterrupted(db, stack, job_id, transcript, longer)
    resumed = _span_lines(stack, job_id, "span resumed")
    assert len(resumed) == 1, resumed
    assert 0 < resumed[0]["pieces_done"] < resumed[0]["pieces"]
    assert len(_span_lines(stack, job_id, "span transcribed")) == 1
    assert run_document(db, stack, job_id, "transcribe~0")["attempts"] == 2
