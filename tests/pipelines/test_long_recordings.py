"""Long recordings through whole jobs on the real emulators: a 3-hour recording analysed as one
span and as many spans (on one and on two processor processes) comes out the same, events
planted exactly on span boundaries are found once, and a 24-hour recording succeeds with its
loudness series (too big for any Firestore document) in Cloud Storage."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from google.cloud import firestore

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack
from jobs.cloud.storage import Storage
from jobs.contract.models import Job, JobStatus
from samples.media import AudioPlan, make_chat
from tests.pipelines.media.recordings import make_vod
from tests.support import JobsWatcher, log_lines, run_document, submit_media

THREE_HOURS = 3 * 3600.0
SPAN = 600.0  # the automatic span for light video: boundaries at every 10 minutes
# Cuts and bursts on span boundaries, and a few between them.
CUTS = [SPAN, 2 * SPAN, 6 * SPAN, 4321.25, 9 * SPAN, 10 * SPAN + 0.25, 15 * SPAN]
BURSTS = [3 * SPAN, 9 * SPAN + 30.0, 7777.5, 16 * SPAN]
CHAT_BURSTS = [1801.0, 7778.0]
WAIT = 900.0  # seconds a whole long job may take on a loaded 2-core machine
# The generated recordings hold noise and tones, no speech: hours of them are not transcribed.
NO_SPEECH = {"transcribe": False}


@pytest.fixture(scope="module")
def vod(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("long")
    video = make_vod(
        directory / "vod.mp4",
        duration_seconds=THREE_HOURS,
        cuts_at=CUTS,
        bursts_at=BURSTS,
        fps=4,
        keyframe_seconds=10.0,
    )
    chat = directory / "chat.jsonl"
    make_chat(chat, duration_seconds=THREE_HOURS, bursts_at=CHAT_BURSTS, base_rate=0.05)
    return video, chat


def stage_output(db: firestore.Client, stack: Stack, job_id: str, run: str) -> Any:
    """A run's output, from its document or from Cloud Storage when it was too big for one."""
    document = run_document(db, stack, job_id, run)
    if document.get("output_uri"):
        data = Storage(stack.settings).read_bytes(document["output_uri"])
        return json.loads(gzip.decompress(data))
    return document["output"]


def analyse(
    stack: Stack, db: firestore.Client, vod: tuple[Path, Path]
) -> tuple[Job, dict[str, Any], dict[str, Any]]:
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        source = upload_file(api, vod[0], "video/mp4")
        chat = upload_file(api, vod[1], "application/x-ndjson")
        job_id = submit_media(api, source=source, chat=chat, options=NO_SPEECH | {"highlights": 5})
        final = watcher.wait_terminal(job_id, timeout=WAIT)
    watcher.stop()
    assert final.status == JobStatus.SUCCEEDED, final.error
    audio = stage_output(db, stack, job_id, "audio")
    scenes = stage_output(db, stack, job_id, "scenes")
    return final, audio, scenes


@pytest.mark.timeout(2 * WAIT + 600)
def test_a_three_hour_recording_comes_out_the_same_as_one_span_or_many_on_one_or_two_processors(
    make_stack: Callable[..., Stack], db: firestore.Client, vod: tuple[Path, Path]
) -> None:
    one_span = make_stack(LONGRUN_MEDIA_SPAN_SECONDS=str(4 * 3600))
    whole, whole_audio, whole_scenes = analyse(one_span, db, vod)
    one_span.stop()
    many = make_stack(processors=2)
    spread, spread_audio, spread_scenes = analyse(many, db, vod)

    assert whole.stages[2].items is not None
    assert whole.stages[2].items.total == 1
    assert spread.stages[2].items is not None
    assert spread.stages[2].items.total == 18
    assert spread.stages[3].items is not None
    assert spread.stages[3].items.total == 18
    # Every planted cut and burst, boundaries included, is found exactly once, either way.
    for scenes in (whole_scenes, spread_scenes):
        assert scenes["cuts"] == pytest.approx(CUTS, abs=0.26)
    for audio in (whole_audio, spread_audio):
        onsets = [peak["time"] for peak in audio["peaks"]]
        assert onsets == pytest.approx(BURSTS, abs=0.51)
    assert spread_scenes["cuts"] == whole_scenes["cuts"]
    assert spread_audio["peaks"] == whole_audio["peaks"]
    assert spread_audio["silences"] == whole_audio["silences"]
    for series in ("momentary_lufs", "short_term_lufs"):
        gap = np.max(np.abs(np.subtract(spread_audio[series], whole_audio[series])))
        assert gap <= 0.1
    assert spread_audio["integrated_lufs"] == pytest.approx(
        whole_audio["integrated_lufs"], abs=0.01
    )
    assert spread_audio["loudness_range_lu"] == pytest.approx(
        whole_audio["loudness_range_lu"], abs=0.01
    )
    assert whole.result is not None
    assert spread.result is not None
    assert spread.result["highlights"] == whole.result["highlights"]
    # Each item read its own span of the file, not the whole of it.
    size = vod[0].stat().st_size
    reads = [line["bytes_read"] for line in log_lines(many, spread.job_id, "span analysed")]
    assert len(reads) == 36
    assert max(reads) < size / 3


def quiet_day(path: Path, *, hours: float, bursts_at: list[float], sample_rate: int) -> Path:
    """FLAC mono at a low rate: a quiet bed for ten minutes every two hours, digital silence
    otherwise (it compresses to almost nothing), loud bursts at `bursts_at`."""
    awake = [(start, start + 600.0) for start in np.arange(0.0, hours * 3600.0, 7200.0)]
    quiet, end = [], 0.0
    for start, stop in awake:
        quiet.append((end, start))
        end = stop
    quiet.append((end, hours * 3600.0))
    bursts = [t for t in bursts_at]
    for t in bursts:  # a burst sounds in the middle of silence too
        quiet = [piece for span in quiet for piece in _without(span, (t - 1.0, t + 3.0))]
    plan = AudioPlan(
        bursts_at=bursts,
        burst_seconds=2.0,
        quiet_spans=quiet,
        sample_rate=sample_rate,
        channels=1,
        seed=4,
    )
    with av.open(str(path), "w", format="flac") as container:
        stream = container.add_stream("flac", rate=sample_rate)
        stream.layout = "mono"
        block = 600 * sample_rate
        total = round(hours * 3600 * sample_rate)
        for first in range(0, total, block):
            samples = plan.chunk(first, min(block, total - first))
            for offset in range(0, samples.shape[1], sample_rate):
                piece = np.ascontiguousarray(samples[:, offset : offset + sample_rate])
                frame = av.AudioFrame.from_ndarray(piece, format="fltp", layout="mono")
                frame.sample_rate, frame.pts = sample_rate, first + offset
                frame.time_base = Fraction(1, sample_rate)
                container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _without(span: tuple[float, float], hole: tuple[float, float]) -> list[tuple[float, float]]:
    start, end = span
    pieces = [(start, min(end, hole[0])), (max(start, hole[1]), end)]
    return [(a, b) for a, b in pieces if b > a]


@pytest.mark.timeout(WAIT + 300)
def test_a_24_hour_recording_succeeds_and_its_loudness_series_downloads(
    make_stack: Callable[..., Stack], db: firestore.Client, tmp_path: Path
) -> None:
    bursts = [3 * 3600.0, 12 * 3600.0 + 0.5, 23 * 3600.0]
    day = quiet_day(tmp_path / "day.flac", hours=24, bursts_at=bursts, sample_rate=1000)
    # Hour-long spans keep the test's 24 items quick; production uses 10-minute ones.
    stack = make_stack(LONGRUN_MEDIA_SPAN_SECONDS="3600")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        source = upload_file(api, day, "audio/flac")
        job_id = submit_media(api, source=source, options=NO_SPEECH)
        final = watcher.wait_terminal(job_id, timeout=WAIT)
        series = api.get(f"/v1/jobs/{job_id}/artifacts/loudness.json")
    watcher.stop()

    assert final.status == JobStatus.SUCCEEDED, final.error
    assert final.stages[2].items is not None
    assert final.stages[2].items.total == 24
    assert series.status_code == 200
    loudness = series.json()
    assert len(loudness["momentary_lufs"]) == 24 * 3600 / 0.4
    assert len(loudness["short_term_lufs"]) == 24 * 3600 / 0.4
    assert loudness["integrated_lufs"] is not None
    assert loudness["gaps"] == []
    audio = run_document(db, stack, job_id, "audio")
    assert audio["output"] is None
    assert audio["output_uri"]
    onsets = [peak["time"] for peak in stage_output(db, stack, job_id, "audio")["peaks"]]
    for burst in bursts:
        assert any(abs(onset - burst) <= 0.51 for onset in onsets), (burst, onsets)
