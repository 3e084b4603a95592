"""`longrun submit media-analysis FILE` uploads the file itself; `longrun download` saves every
artifact, each with a progress bar, byte for byte as the job stored it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from samples.media import make_chat, make_video
from tests.cli.commands import Cli, run_cli
from tests.support import Stack

PNG = b"\x89PNG\r\n\x1a\n"
JPEG = b"\xff\xd8\xff"


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    directory = tmp_path_factory.mktemp("recording")
    video, chat = directory / "match.mp4", directory / "match.jsonl"
    make_video(video, duration_seconds=20.0, cuts_at=[6.0, 13.0], bursts_at=[9.0])
    make_chat(chat, duration_seconds=20.0, bursts_at=[9.5])
    return video, chat


@pytest.mark.timeout(900)  # a real analysis, on a machine other test runs share
def test_submit_uploads_local_files_and_download_saves_every_artifact(
    stack: Stack, cli: Cli, recording: tuple[Path, Path], tmp_path: Path
) -> None:
    video, chat = recording

    # Without transcription (nothing is said in it), which would only make the test slower.
    done = run_cli(
        stack, "submit", "media-analysis", str(video), "--chat", str(chat),
        "--input", '{"options": {"transcribe": false}}', "--wait", "--json",
        config_home=tmp_path / "config", timeout=540,
    )  # fmt: skip
    final = json.loads(done.stdout.splitlines()[-1])
    everything = cli("download", final["job_id"], "-o", str(tmp_path / "all"), "--json")
    # As in a terminal, so the progress bar draws (and as the same remembered user as `cli`).
    one = run_cli(
        stack, "download", final["job_id"], "report.json", "-o", str(tmp_path / "one"),
        config_home=tmp_path / "config", FORCE_COLOR="1", TERM="xterm",
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert final["status"] == "succeeded"
    assert final["input"]["source"] != str(video), "the file went up as an upload"
    assert final["input"]["chat"] != str(chat)
    assert final["input"]["options"]["transcribe"] is False, "--input joined the sources"
    assert everything.returncode == 0, everything.stderr
    saved = json.loads(everything.stdout)
    names = {item["name"] for item in saved["files"]}
    copies = {name for name in final["artifacts"] if name.startswith("source.")}
    assert copies, "the job lists its copy of the recording"
    assert names == set(final["artifacts"]) - copies, "every artifact but the recording's copy"
    assert {"report.json", "timeline.png", "loudness.json"} <= names
    for item in saved["files"]:
        assert Path(item["path"]).stat().st_size == final["artifacts"][item["name"]]["size_bytes"]
    report = json.loads((tmp_path / "all" / "report.json").read_text())
    assert report["summary"]["scene_cuts"] == 2, "the report is this recording's own"
    assert (tmp_path / "all" / "timeline.png").read_bytes().startswith(PNG)
    assert all(
        (tmp_path / "all" / name).read_bytes().startswith(JPEG)
        for name in names
        if name.startswith("thumbnail-")
    )
    assert one.returncode == 0, one.stderr
    assert [p.name for p in (tmp_path / "one").iterdir()] == ["report.json"]
    assert "report.json" in one.stderr
    assert "━" in one.stderr, "a progress bar drew"


def test_download_of_an_unknown_artifact_names_the_ones_there_are(cli: Cli) -> None:
    submitted = cli("submit", "diagnostic", "--input", '{"stages": 1}', "--wait", "--json")
    job_id = json.loads(submitted.stdout.splitlines()[-1])["job_id"]

    none = cli("download", job_id)

    assert none.returncode == 1
    assert f"Job {job_id} has no artifacts (succeeded)" in none.stderr


def test_submit_refuses_what_is_neither_a_file_nor_a_url_before_sending_anything(
    cli: Cli, tmp_path: Path
) -> None:
    missing = cli("submit", "media-analysis", str(tmp_path / "nothing.mp4"))
    not_an_object = cli("submit", "media-analysis", "https://example.com/a.mp4", "--input", "[]")
    refused_url = cli("submit", "media-analysis", "gs://someone-elses-bucket/a.mp4", "--json")
    listed = json.loads(cli("jobs", "--json").stdout)

    assert missing.returncode == 2
    assert "neither a readable file here nor an https:// or gs:// URL" in missing.stderr
    assert not_an_object.returncode == 2
    assert refused_url.returncode == 1, "the URL went to the API as it is, which refused it"
    assert "SOURCE_NOT_ALLOWED" in refused_url.stderr or "input.source" in refused_url.stderr
    assert listed["jobs"] == []
