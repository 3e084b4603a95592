"""media-analysis transcribing real recorded speech end to end: the API, Pub/Sub, processors,
Storage and the embedded engine together, with spans short enough that their boundaries fall in
the middle of sentences."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable

import httpx
import jiwer
import pytest
from google.cloud import firestore

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack
from jobs.contract.models import Job, JobStatus, StageStatus
from tests.pipelines.conftest import Spoken
from tests.pipelines.media.test_transcription import MAX_WER, TIME_TOLERANCE_SECONDS
from tests.support import JobsWatcher, submit_media

# Three spans of the 31 s recording, with boundaries at 10 s and 20 s: mid-utterance both.
SPAN_SECONDS = "10"
WAIT = 400.0  # recognising ~50 s of sound (spans and overlaps) on a loaded 2-core machine


def transcribed(stack: Stack, db: firestore.Client, spoken: Spoken, **options: bool) -> Job:
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        source = upload_file(api, spoken.path, "audio/wav")
        job_id = submit_media(api, source=source, options=options)
        final = watcher.wait_terminal(job_id, timeout=WAIT)
    watcher.stop()
    assert final.status == JobStatus.SUCCEEDED, final.error
    return final


@pytest.mark.timeout(2 * WAIT)
def test_a_recording_of_speech_is_transcribed_across_spans_into_three_downloadable_files(
    make_stack: Callable[..., Stack], db: firestore.Client, spoken: Spoken
) -> None:
    stack = make_stack(LONGRUN_TRANSCRIPT_SPAN_SECONDS=SPAN_SECONDS)

    final = transcribed(stack, db, spoken)
    with stack.api() as api:
        files = {
            name: api.get(f"/v1/jobs/{final.job_id}/artifacts/{name}")
            for name in ("transcript.json", "transcript.vtt", "transcript.srt")
        }

    stage = next(stage for stage in final.stages if stage.name == "transcribe")
    assert stage.status == StageStatus.SUCCEEDED
    assert stage.items is not None
    assert stage.items.total == 3
    assert all(response.status_code == 200 for response in files.values())
    transcript = json.loads(files["transcript.json"].content)
    words = [word for segment in transcript["segments"] for word in segment["words"]]
    text = " ".join(word["text"] for word in words)
    assert jiwer.wer(spoken.text, text) <= MAX_WER, text
    assert all(a["end"] <= b["start"] + 0.05 for a, b in itertools.pairwise(words))
    first, last = spoken.places[0][0], spoken.places[-1][1]
    assert words[0]["start"] >= first - TIME_TOLERANCE_SECONDS
    assert words[-1]["end"] <= last + TIME_TOLERANCE_SECONDS
    assert files["transcript.vtt"].text.startswith("WEBVTT\n\n00:00:01")
    assert files["transcript.srt"].text.startswith("1\n00:00:01")
    assert final.result is not None
    summary = final.result["transcript"]
    assert summary["language"] == "en-US"
    assert summary["words"] == len(words)
    # About the 24.7 s the five utterances last, less the pauses within them.
    assert 15.0 <= summary["speech_seconds"] <= 27.0


def test_transcription_can_be_turned_off(
    stack: Stack, db: firestore.Client, spoken: Spoken, api: httpx.Client
) -> None:
    final = transcribed(stack, db, spoken, transcribe=False)

    stage = next(stage for stage in final.stages if stage.name == "transcribe")
    assert stage.status == StageStatus.SKIPPED
    assert final.result is not None
    assert "transcript" not in final.result
    assert "transcript.json" not in final.artifacts
