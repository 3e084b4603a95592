"""Damaged and unusual recordings through whole media-analysis jobs: the job succeeds, the
damage is in its result's warnings at the right time, and the rest is analysed."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus, StageStatus
from samples.damaged import overwrite_middle, with_skeleton
from samples.media import make_video
from tests.pipelines.media.recordings import make_opus
from tests.support import JobsWatcher, submit_media

NO_SPEECH = {"transcribe": False}


def test_a_damaged_mpeg_program_stream_is_analysed_around_its_damage(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, tmp_path: Path
) -> None:
    whole = tmp_path / "whole.mpg"
    make_video(whole, duration_seconds=30.0, cuts_at=[8.0, 22.0], bursts_at=[5.0, 25.0])
    path = tmp_path / "recorder.mpg"
    overwrite_middle(whole, path, at=0.5, length=60_000)
    source = upload_file(api, path, "video/mpeg")

    job_id = submit_media(api, source=source, options=NO_SPEECH)
    final = jobs_watcher.wait_terminal(job_id, timeout=300)
    report = api.get(f"/v1/jobs/{job_id}/artifacts/report.json", follow_redirects=True).json()

    assert final.status == JobStatus.SUCCEEDED, final.error
    assert final.result is not None
    damage = [w for w in final.result["warnings"] if "undecodable" in w]
    assert damage, final.result["warnings"]
    assert all(re.search(r"undecodable at 00:00:1[2-8] \((audio|video)\)", w) for w in damage)
    assert report["warnings"] == final.result["warnings"]
    assert report["audio"]["undecodable"]
    assert [round(cut) for cut in report["scenes"]["cuts"]] == [8, 22]
    assert [round(peak["time"]) for peak in report["audio"]["peaks"]] == [5, 25]


def test_ogg_with_a_skeleton_stream_is_analysed_as_sound(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, tmp_path: Path
) -> None:
    plain = make_opus(tmp_path / "plain.ogg", duration_seconds=20.0, bursts_at=[12.0])
    source = upload_file(api, with_skeleton(plain, tmp_path / "talk.ogg"), "audio/ogg")

    job_id = submit_media(api, source=source, options=NO_SPEECH)
    final = jobs_watcher.wait_terminal(job_id, timeout=180)

    assert final.status == JobStatus.SUCCEEDED, final.error
    assert final.result is not None
    statuses = {stage.name: stage.status for stage in final.stages}
    assert statuses["scenes"] == StageStatus.SKIPPED
    assert statuses["audio"] == StageStatus.SUCCEEDED
    assert final.result["warnings"] == []
    best = final.result["highlights"][0]
    assert best["start"] <= 12.5 <= best["end"]
