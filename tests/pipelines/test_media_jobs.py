"""media-analysis end to end: uploads, Pub/Sub, the processor, Storage and the API together."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore
from PIL import Image

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.storage import Storage
from jobs.contract.models import JobStatus, StageStatus
from samples.media import make_audio, make_chat, make_video
from tests.support import JobsWatcher, log_lines, submit_media

DURATION = 40.0
CUTS = [8.0, 17.0, 29.0]
BURSTS = [11.0, 24.0, 34.0]
CHAT_BURSTS = [24.5]
# The generated recordings hold noise and tones, no speech (test_transcription_jobs has some).
NO_SPEECH = {"transcribe": False}


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("media")
    make_video(directory / "stream.mp4", duration_seconds=DURATION, cuts_at=CUTS, bursts_at=BURSTS)
    make_audio(directory / "podcast.wav", duration_seconds=DURATION, bursts_at=BURSTS)
    make_chat(
        directory / "chat.jsonl", duration_seconds=DURATION, bursts_at=CHAT_BURSTS, bad_lines=3
    )
    (directory / "notes.txt").write_text("these are not the media you are looking for\n" * 50)
    full = (directory / "stream.mp4").read_bytes()
    (directory / "truncated.mp4").write_bytes(full[: len(full) // 3])
    (directory / "empty.mp4").write_bytes(b"")
    return directory


def test_a_video_with_chat_runs_every_stage_and_finds_the_planted_highlights(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, media_dir: Path
) -> None:
    source = upload_file(api, media_dir / "stream.mp4", "video/mp4")
    chat = upload_file(api, media_dir / "chat.jsonl", "application/x-ndjson")

    job_id = submit_media(api, source=source, chat=chat, options=NO_SPEECH | {"highlights": 3})
    final = jobs_watcher.wait_terminal(job_id, timeout=180)

    assert final.status == JobStatus.SUCCEEDED, final.error
    statuses = {stage.name: stage.status for stage in final.stages}
    assert statuses.pop("transcribe") == StageStatus.SKIPPED
    assert set(statuses.values()) == {StageStatus.SUCCEEDED}
    progress = [job.progress for job in jobs_watcher.history(job_id)]
    assert progress == sorted(progress)
    assert progress[-1] == 1.0
    assert final.result is not None
    spans = [(h["start"], h["end"]) for h in final.result["highlights"]]
    for burst in BURSTS:
        assert any(start - 1.0 <= burst <= end + 1.0 for start, end in spans), (burst, spans)
    assert len(spans) == 3
    assert {"report.json", "timeline.png", "thumbnail-1.jpg"} <= set(final.artifacts)
    history = jobs_watcher.history(job_id)
    thumbnails = [next(s for s in job.stages if s.name == "thumbnails") for job in history]
    assert any("thumbnails" in (stage.message or "") for stage in thumbnails)


def test_artifacts_are_stored_and_download_through_the_api(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, media_dir: Path
) -> None:
    source = upload_file(api, media_dir / "stream.mp4", "video/mp4")
    options = NO_SPEECH | {"highlights": 2, "thumbnail_width": 200}
    job_id = submit_media(api, source=source, options=options)
    final = jobs_watcher.wait_terminal(job_id, timeout=180)
    assert final.status == JobStatus.SUCCEEDED, final.error

    report = api.get(f"/v1/jobs/{job_id}/artifacts/report.json")
    timeline = api.get(f"/v1/jobs/{job_id}/artifacts/timeline.png")
    thumbnail = api.get(f"/v1/jobs/{job_id}/artifacts/thumbnail-1.jpg")
    missing = api.get(f"/v1/jobs/{job_id}/artifacts/nothing.bin")

    assert report.status_code == 200
    assert len(json.loads(report.content)["highlights"]) == 2
    assert timeline.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(timeline.content)).format == "PNG"
    assert Image.open(io.BytesIO(thumbnail.content)).size[0] == 200
    assert missing.status_code == 404
    assert missing.json()["code"] == "ARTIFACT_NOT_FOUND"
    stored = Storage(stack.settings).stat(final.artifacts["report.json"].uri)
    assert stored is not None
    assert stored.size_bytes == len(report.content)


def test_the_recording_plays_from_a_signed_link_that_serves_ranges(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, media_dir: Path
) -> None:
    recording = (media_dir / "stream.mp4").read_bytes()
    source = upload_file(api, media_dir / "stream.mp4", "video/mp4")
    job_id = submit_media(api, source=source, options=NO_SPEECH | {"highlights": 1})
    final = jobs_watcher.wait_terminal(job_id, timeout=180)
    assert final.status == JobStatus.SUCCEEDED, final.error

    link = api.get(f"/v1/jobs/{job_id}/artifacts/source.mp4/link")
    missing = api.get(f"/v1/jobs/{job_id}/artifacts/nothing.bin/link")
    # What a video element does: read without credentials, from the start, then seek.
    first = httpx.get(link.json()["url"], headers={"Range": "bytes=0-"}, timeout=30)
    seek = len(recording) // 2
    later = httpx.get(
        link.json()["url"], headers={"Range": f"bytes={seek}-{seek + 999}"}, timeout=30
    )

    assert link.status_code == 200
    assert link.json()["content_type"] == "video/mp4"
    assert link.json()["size_bytes"] == len(recording)
    assert link.json()["expires_in_seconds"] == stack.settings.download_url_seconds
    assert "X-Goog-Signature=" in link.json()["url"]
    assert first.status_code == 206
    assert first.content == recording
    assert later.status_code == 206
    assert later.headers["content-range"] == f"bytes {seek}-{seek + 999}/{len(recording)}"
    assert later.content == recording[seek : seek + 1000]
    assert missing.status_code == 404
    assert missing.json()["code"] == "ARTIFACT_NOT_FOUND"


def test_audio_only_without_chat_skips_scenes_and_chat(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, media_dir: Path
) -> None:
    source = upload_file(api, media_dir / "podcast.wav", "audio/wav")

    job_id = submit_media(api, source=source, options=NO_SPEECH)
    final = jobs_watcher.wait_terminal(job_id, timeout=180)

    assert final.status == JobStatus.SUCCEEDED, final.error
    statuses = {stage.name: stage.status for stage in final.stages}
    assert statuses["scenes"] == StageStatus.SKIPPED
    assert statuses["chat"] == StageStatus.SKIPPED
    assert statuses["audio"] == StageStatus.SUCCEEDED
    assert final.progress == 1.0
    assert final.result is not None
    assert final.result["has_video"] is False
    loudness = final.result["loudness"]
    assert -40.0 < loudness["integrated_lufs"] < 0.0
    assert loudness["loudness_range_lu"] > 0.0
    assert loudness["sample_peak_dbfs"] <= 0.0
    assert "thumbnail-1.jpg" in final.artifacts


# A bucket that is not longrun's, standing for a user's own media; stacks that read from it
# list it in LONGRUN_SOURCE_BUCKETS, as an operator would.
OUTSIDE_BUCKET = "someone-elses-media"


def outside_object(stack: Stack, path: Path) -> str:
    """Put a file in OUTSIDE_BUCKET; its gs:// URI."""
    storage = Storage(stack.settings)
    bucket = storage._client.bucket(OUTSIDE_BUCKET)
    if not bucket.exists():
        storage._client.create_bucket(bucket.name)
    bucket.blob(path.name).upload_from_filename(str(path))
    return f"gs://{bucket.name}/{path.name}"


@pytest.fixture(scope="module")
def sources_stack(log_dir: Path, emulator_hosts: dict[str, str]) -> Iterator[Stack]:
    """The default stack, but whose operator lets users name OUTSIDE_BUCKET in gs:// sources."""
    running = start_stack(log_dir / "media-sources", LONGRUN_SOURCE_BUCKETS=OUTSIDE_BUCKET)
    yield running
    running.stop()


@pytest.mark.parametrize("name", ["notes.txt", "truncated.mp4", "empty.mp4"])
def test_what_is_not_playable_media_fails_once_with_unsupported_media(
    sources_stack: Stack, db: firestore.Client, media_dir: Path, name: str
) -> None:
    path = media_dir / name
    watcher = JobsWatcher.start(db, sources_stack.settings)
    with sources_stack.api() as api:
        # An upload must declare a size above zero, so the empty file comes from a bucket.
        has_bytes = path.stat().st_size > 0
        source = upload_file(api, path) if has_bytes else outside_object(sources_stack, path)
        job_id = submit_media(api, source=source)
    final = watcher.wait_terminal(job_id, timeout=120)
    watcher.stop()

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert final.error.code == "UNSUPPORTED_MEDIA"
    assert final.error.retryable is False
    assert sum(stage.attempts for stage in final.stages) <= 2, "no retry storm"
    assert len(log_lines(sources_stack, job_id, "claim claimed")) <= 2


def test_an_address_that_only_resolves_to_loopback_is_refused_at_submit(
    api: httpx.Client,
) -> None:
    refused = api.post(
        "/v1/jobs",
        json={"pipeline": "media-analysis", "input": {"source": "https://2130706433/vod.mp4"}},
    )

    assert refused.status_code == 422
    assert refused.json()["code"] == "SOURCE_NOT_ALLOWED"


def test_an_oversize_gs_source_fails_without_being_read(
    make_stack: Callable[..., Stack], db: firestore.Client, media_dir: Path
) -> None:
    stack = make_stack(LONGRUN_MAX_SOURCE_BYTES="1000", LONGRUN_SOURCE_BUCKETS=OUTSIDE_BUCKET)
    big = outside_object(stack, media_dir / "stream.mp4")
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_media(api, source=big)
        own = api.post(
            "/v1/jobs",
            json={
                "pipeline": "media-analysis",
                "input": {"source": f"gs://{stack.settings.bucket_name}/uploads/x/y.mp4"},
            },
        )

    final = watcher.wait_terminal(job_id, timeout=60)
    watcher.stop()

    assert final.error is not None
    assert final.error.code == "SOURCE_TOO_LARGE"
    assert own.status_code == 422
    assert own.json()["code"] == "SOURCE_NOT_ALLOWED"
