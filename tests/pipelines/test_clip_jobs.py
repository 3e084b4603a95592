"""Highlight clips end to end: cut by the `clips` stage, one item each, downloaded through the
API (or named by the CLI), and played back with PyAV."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack
from jobs.cloud.storage import Storage
from jobs.contract.models import Job, JobStatus, StageStatus
from samples.encodings import Encoding, encode_recording
from samples.media import make_audio, make_chat
from tests.cli.commands import run_cli
from tests.pipelines.clip_recordings import decode, keyframe_times, picture_at
from tests.support import JobsWatcher, submit_media

DURATION = 40.0
FPS = 25
KEYFRAME_SECONDS = 2.0
NO_SPEECH = {"transcribe": False}
# The CLI as installed runs the code of the checkout the tests come from.
CHECKOUT = str(Path(__file__).resolve().parents[2])


def stage(job: Job, name: str) -> Any:
    return next(s for s in job.stages if s.name == name)


def highlights(job: Job) -> list[dict[str, Any]]:
    assert job.result is not None
    found: list[dict[str, Any]] = job.result["highlights"]
    return found


def download(api: httpx.Client, job_id: str, name: str, directory: Path) -> Path:
    response = api.get(f"/v1/jobs/{job_id}/artifacts/{name}")
    assert response.status_code == 200, response.text
    path = directory / name
    path.write_bytes(response.content)
    return path


@pytest.mark.timeout(600)
def test_clips_of_an_h264_recording_are_keyframe_copies_that_download_and_play(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, tmp_path: Path
) -> None:
    source = encode_recording(
        tmp_path / "stream.mp4",
        Encoding("mp4", "libx264", "aac", 44100),
        duration_seconds=DURATION,
        cuts_at=[8.0, 17.0, 29.0],
        bursts_at=[11.0, 24.0, 34.0],
        keyframe_seconds=KEYFRAME_SECONDS,
    )
    upload = upload_file(api, source, "video/mp4")

    job_id = submit_media(api, source=upload, options=NO_SPEECH | {"highlights": 3})
    final = jobs_watcher.wait_terminal(job_id, timeout=480)

    assert final.status == JobStatus.SUCCEEDED, final.error
    clips = stage(final, "clips")
    assert clips.status == StageStatus.SUCCEEDED
    assert (clips.items.total, clips.items.done, clips.items.failed) == (3, 3, 0)
    report = json.loads(api.get(f"/v1/jobs/{job_id}/artifacts/report.json").content)
    keyframes = keyframe_times(source)
    for index, highlight in enumerate(highlights(final)):
        name = f"clip-{index + 1}.mp4"
        assert highlight["clip"] == name
        assert report["highlights"][index]["clip"] == name
        assert report["clips"][index]["method"] == "copy"
        assert final.artifacts[name].content_type == "video/mp4"
        # From the last keyframe at or before the lead-in: at most a keyframe interval more.
        start, want = highlight["clip_start"], max(0.0, highlight["start"] - 1.0)
        assert min(abs(start - k) for k in keyframes) < 1e-3
        assert want - KEYFRAME_SECONDS < start <= want + 1e-3
        path = download(api, job_id, name, tmp_path)
        data = path.read_bytes()
        assert data.index(b"moov") < data.index(b"mdat"), "plays while it downloads"
        played = decode(path)
        assert (played.video_codec, played.audio_codec) == ("h264", "aac")
        length = highlight["end"] - start
        assert played.picture_times[0] == pytest.approx(0.0, abs=1e-3)
        assert played.picture_times[-1] + 1 / FPS == pytest.approx(length, abs=0.1)
        assert played.sound_end == pytest.approx(length, abs=0.1)
        assert np.array_equal(picture_at(path, 0.0), picture_at(source, start))


@pytest.mark.timeout(600)
def test_a_clip_that_cannot_be_cut_is_a_gap_and_the_others_are_re_encoded(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, tmp_path: Path
) -> None:
    # MPEG-4 Part 2 is re-encoded (browsers do not play it); no picture between 15 s and 28 s
    # can be decoded, and that is where the chat burst is.
    spoiled = (15.0, 28.0)
    source = encode_recording(
        tmp_path / "old.mkv",
        Encoding("matroska", "mpeg4", "aac"),
        duration_seconds=DURATION,
        cuts_at=[6.0, 33.0],
        bursts_at=[8.0, 31.0],
        zeroed=spoiled,
    )
    make_chat(tmp_path / "chat.jsonl", duration_seconds=DURATION, bursts_at=[18.5])
    upload = upload_file(api, source, "video/x-matroska")
    chat = upload_file(api, tmp_path / "chat.jsonl", "application/x-ndjson")

    job_id = submit_media(api, source=upload, chat=chat, options=NO_SPEECH | {"highlights": 3})
    final = jobs_watcher.wait_terminal(job_id, timeout=480)

    assert final.status == JobStatus.SUCCEEDED, final.error
    clips = stage(final, "clips")
    assert clips.status == StageStatus.SUCCEEDED
    report = json.loads(api.get(f"/v1/jobs/{job_id}/artifacts/report.json").content)
    lost = [h for h in highlights(final) if spoiled[0] <= h["start"] - 1 and h["end"] <= spoiled[1]]
    assert len(lost) == 1, highlights(final)
    assert lost[0]["clip"] is None
    assert (clips.items.total, clips.items.failed) == (3, 1)
    assert "error" in report["clips"][highlights(final).index(lost[0])]
    for highlight in highlights(final):
        if highlight is lost[0]:
            continue
        assert highlight["clip_start"] == pytest.approx(highlight["start"] - 1.0, abs=1e-3)
        played = decode(download(api, job_id, highlight["clip"], tmp_path))
        assert (played.video_codec, played.audio_codec) == ("h264", "aac")
        length = highlight["end"] - highlight["clip_start"]
        assert played.picture_times[0] == pytest.approx(0.0, abs=1 / FPS)
        assert played.picture_times[-1] + 1 / FPS == pytest.approx(length, abs=0.1)


@pytest.mark.timeout(600)
def test_the_cli_prints_the_clip_urls_of_a_recording_of_sound_alone(
    stack: Stack, jobs_watcher: JobsWatcher, tmp_path: Path
) -> None:
    make_audio(tmp_path / "talk.mp3", duration_seconds=DURATION, bursts_at=[12.0, 30.0])

    def cli(*args: str) -> str:
        done = run_cli(stack, *args, config_home=tmp_path / "config", PYTHONPATH=CHECKOUT)
        assert done.returncode == 0, done.stderr
        return done.stdout

    upload = cli("upload", str(tmp_path / "talk.mp3")).strip()
    media_input = {"source": upload, "options": NO_SPEECH | {"highlights": 2}}
    submitted = cli("submit", "media-analysis", "--input", json.dumps(media_input))
    found = re.search(r"Submitted job (\S+)", submitted)
    assert found is not None, submitted
    job_id = found.group(1)
    final = jobs_watcher.wait_terminal(job_id, timeout=480)
    shown = cli("watch", job_id)

    assert final.status == JobStatus.SUCCEEDED, final.error
    for index, highlight in enumerate(highlights(final)):
        name = f"clip-{index + 1}.mp3"
        assert highlight["clip"] == name
        assert f"clip: {stack.api_url}/v1/jobs/{job_id}/artifacts/{name}" in shown
        artifact = final.artifacts[name]
        assert artifact.content_type == "audio/mpeg"
        path = tmp_path / name
        path.write_bytes(Storage(stack.settings).read_bytes(artifact.uri))
        played = decode(path)
        assert (played.video_codec, played.audio_codec) == (None, "mp3")
        length = highlight["end"] - highlight["clip_start"]
        assert played.sound_end == pytest.approx(length, abs=0.1)


@pytest.mark.timeout(600)
def test_clips_turned_off_are_skipped(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, tmp_path: Path
) -> None:
    make_audio(tmp_path / "talk.wav", duration_seconds=20.0, bursts_at=[9.0])
    upload = upload_file(api, tmp_path / "talk.wav", "audio/wav")

    job_id = submit_media(api, source=upload, options=NO_SPEECH | {"clips": False})
    final = jobs_watcher.wait_terminal(job_id, timeout=480)

    assert final.status == JobStatus.SUCCEEDED, final.error
    assert stage(final, "clips").status == StageStatus.SKIPPED
    assert highlights(final)
    assert all(h["clip"] is None for h in highlights(final))
    assert not [name for name in final.artifacts if name.startswith("clip-")]
