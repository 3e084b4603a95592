"""media-analysis transcribing real recorded speech end to end: the API, Pub/Sub, processors,
Storage and the embedded engine together, with spans short enough that their boundaries fall in
the middle of sentences."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jiwer
import pytest
from google.cloud import firestore

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack, start_stack
from jobs.contract.models import Job, JobStatus, StageStatus
from samples.speech import join_recordings
from tests.pipelines.conftest import Spoken
from tests.pipelines.media.test_transcription import MAX_WER, TIME_TOLERANCE_SECONDS
from tests.support import (
    JobsWatcher,
    log_lines,
    processor_log_lines_by_process,
    submit_media,
    wait_until,
)

# Three spans of the 31 s recording, with boundaries at 10 s and 20 s: mid-utterance both.
SPAN_SECONDS = "10"
WAIT = 400.0  # recognising ~50 s of sound (spans and overlaps) on a loaded 2-core machine


@pytest.fixture(scope="module")
def short_spans(log_dir: Path) -> Iterator[Stack]:
    running = start_stack(log_dir / "short-spans", LONGRUN_TRANSCRIPT_SPAN_SECONDS=SPAN_SECONDS)
    yield running
    running.stop()


def transcribed(
    stack: Stack, db: firestore.Client, spoken: Spoken, **options: object
) -> tuple[Job, list[Job]]:
    """The job's end, and every state of its document a watcher saw on the way."""
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        source = upload_file(api, spoken.path, "audio/wav")
        job_id = submit_media(api, source=source, options=options)
        final = watcher.wait_terminal(job_id, timeout=WAIT)
    watcher.stop()
    assert final.status == JobStatus.SUCCEEDED, final.error
    return final, watcher.history(job_id)


@pytest.mark.timeout(2 * WAIT)
def test_a_recording_of_speech_is_transcribed_across_spans_into_three_downloadable_files(
    short_spans: Stack, db: firestore.Client, spoken: Spoken
) -> None:
    stack = short_spans

    final, _seen = transcribed(stack, db, spoken)
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


@pytest.mark.timeout(2 * WAIT)
def test_words_arrive_while_the_job_runs_and_keywords_said_lead_its_highlights(
    short_spans: Stack, db: firestore.Client, spoken: Spoken
) -> None:
    final, seen = transcribed(
        short_spans, db, spoken, highlights=3, keywords=["Selfish", "cold hearted"]
    )
    with short_spans.api() as api:
        report = api.get(f"/v1/jobs/{final.job_id}/artifacts/report.json").json()
        readable = api.get(f"/v1/jobs/{final.job_id}/artifacts/report.md").text

    # Lines showed up as spans finished, before the transcript was whole (and the job done).
    early = [job for job in seen if _transcribing(job) and job.latest.get("transcribe")]
    assert early, "no transcript line was visible while the spans ran"
    assert all(set(line) == {"start", "end", "text"} for line in early[0].latest["transcribe"])
    heard = " ".join(line["text"] for line in final.latest["transcribe"])
    assert "selfish" in heard or "amiable" in heard, heard
    assert final.result is not None
    highlights = final.result["highlights"]
    best = max(highlights, key=lambda highlight: highlight["score"])
    assert "said 'Selfish' at 0:16" in best["reasons"], highlights
    assert any(reason.startswith("said 'cold hearted' at 0:1") for reason in best["reasons"])
    assert "selfish" in " ".join(line["text"] for line in best["transcript"])
    assert all(highlight["transcript"] for highlight in highlights)
    assert "- said 'Selfish' at 0:16" in readable
    assert [h["transcript"] for h in report["highlights"]] == [h["transcript"] for h in highlights]


def _transcribing(job: Job) -> bool:
    stage = next(stage for stage in job.stages if stage.name == "transcribe")
    return job.status == JobStatus.RUNNING and not stage.status.done


def test_transcription_can_be_turned_off(
    stack: Stack, db: firestore.Client, spoken: Spoken, api: httpx.Client
) -> None:
    final, _seen = transcribed(stack, db, spoken, transcribe=False)

    stage = next(stage for stage in final.stages if stage.name == "transcribe")
    assert stage.status == StageStatus.SKIPPED
    assert final.result is not None
    assert "transcript" not in final.result
    assert "transcript.json" not in final.artifacts


def test_cancelling_during_transcription_stops_its_spans_within_one_utterance(
    short_spans: Stack, db: firestore.Client, spoken: Spoken, tmp_path: Path
) -> None:
    longer = tmp_path / "twice.wav"
    join_recordings(spoken.recordings * 2, longer)  # 60 s: six spans of 10 s
    watcher = JobsWatcher.start(db, short_spans.settings)
    with short_spans.api() as api:
        source = upload_file(api, longer, "audio/wav")
        job_id = submit_media(api, source=source)

        def recognising(job: Job) -> bool:
            stage = next(s for s in job.stages if s.name == "transcribe")
            running = stage.items.running if stage.items else {}
            return any(progress > 0.15 for progress in running.values())

        watcher.wait_for(job_id, recognising, timeout=WAIT)
        cancelled_at = time.monotonic()
        assert api.post(f"/v1/jobs/{job_id}/cancel").status_code == 202
        wait_until(lambda: bool(stopped_spans(short_spans, job_id)), "a span to stop", timeout=60)
        stopped_after = time.monotonic() - cancelled_at
        final = watcher.wait_terminal(job_id, timeout=WAIT)
    watcher.stop()

    assert final.status == JobStatus.CANCELLED
    stage = next(s for s in final.stages if s.name == "transcribe")
    assert stage.status == StageStatus.CANCELLED
    assert "transcript.json" not in final.artifacts
    # A decode is never longer than one utterance (at most 12 s of sound) between the progress
    # calls where an item stops; on a loaded 2-core machine that is a few seconds.
    assert stopped_after < 15, stopped_after


def stopped_spans(stack: Stack, job_id: str) -> list[dict[str, object]]:
    """The transcription items that ended cancelled."""
    return [
        line
        for line in log_lines(stack, job_id, "stage ended")
        if line["stage"] == "transcribe" and "item" in line and line["outcome"] == "cancelled"
    ]


@pytest.mark.timeout(3 * WAIT)
def test_a_processor_killed_mid_span_runs_that_span_again_and_no_other(
    make_stack: Callable[..., Stack], db: firestore.Client, spoken: Spoken
) -> None:
    # Two processes, as two instances; a lease that a dead one gives up within seconds.
    stack = make_stack(
        processors=2,
        LONGRUN_TRANSCRIPT_SPAN_SECONDS=SPAN_SECONDS,
        LONGRUN_LEASE_SECONDS="10",
        LONGRUN_HEARTBEAT_SECONDS="2",
    )
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        source = upload_file(api, spoken.path, "audio/wav")
        job_id = submit_media(api, source=source)
        busy = watcher.wait_for(job_id, _recognising, timeout=WAIT)
        item = next(n for n, done in _span_progress(busy).items() if done > 0.15)
        victim = _claimed_by(stack, job_id, item)
        interrupted = _unfinished(stack, job_id, victim)  # the process may hold two spans
        stack.kill_processor(victim)
        final = watcher.wait_terminal(job_id, timeout=WAIT)
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED, final.error
    stage = next(s for s in final.stages if s.name == "transcribe")
    assert stage.items is not None
    assert (stage.items.total, stage.items.done, stage.items.failed) == (3, 3, 0)
    transcribed_spans = [int(line["item"]) for line in log_lines(stack, job_id, "span transcribed")]
    # The killed span was heard to its end once, by the process that took it over; every other
    # span once, by whoever claimed it first: nothing lost, nothing heard twice.
    assert sorted(transcribed_spans) == [0, 1, 2]
    claims = [int(line["item"]) for line in _claims(stack, job_id)]
    assert item in interrupted
    assert all(claims.count(span) == 2 for span in interrupted), claims
    assert all(claims.count(other) == 1 for other in {0, 1, 2} - interrupted), claims
    assert final.result is not None
    assert final.result["transcript"]["words"] > 40


def _span_progress(job: Job) -> dict[int, float]:
    stage = next(s for s in job.stages if s.name == "transcribe")
    running = stage.items.running if stage.items else {}
    return {int(number): done for number, done in running.items()}


def _recognising(job: Job) -> bool:
    return any(done > 0.15 for done in _span_progress(job).values())


def _about_a_span(line: dict[str, Any], job_id: str) -> bool:
    return (line.get("job_id"), line.get("stage")) == (job_id, "transcribe") and "item" in line


def _claims(stack: Stack, job_id: str) -> list[dict[str, Any]]:
    claims = log_lines(stack, job_id, "claim claimed")
    return [line for line in claims if _about_a_span(line, job_id)]


def _unfinished(stack: Stack, job_id: str, process: int) -> set[int]:
    """The spans the process claimed and has not transcribed yet."""
    lines = list(processor_log_lines_by_process(stack).values())[process]
    mine = [line for line in lines if _about_a_span(line, job_id)]
    claimed = {int(line["item"]) for line in mine if line["message"] == "claim claimed"}
    done = {int(line["item"]) for line in mine if line["message"] == "span transcribed"}
    return claimed - done


def _claimed_by(stack: Stack, job_id: str, item: int) -> int:
    """The index of the processor process that claimed the item."""
    for index, lines in enumerate(processor_log_lines_by_process(stack).values()):
        for line in lines:
            if (line.get("job_id"), line.get("stage"), line["message"], line.get("item")) == (
                job_id,
                "transcribe",
                "claim claimed",
                str(item),
            ):
                return index
    raise AssertionError(f"no process claimed span {item}")
