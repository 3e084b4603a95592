"""The demo page in a real browser (headless Chromium driven by playwright-core from npm)."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest

from deploy.local.ephemeral import Stack
from tests.pipelines.conftest import Spoken

ROOT = Path(__file__).parents[2]
# The pictures in the docs come from these tests' runs.
SCREENSHOT = ROOT / "docs" / "page.png"
WATCH_PHONE_SCREENSHOT = ROOT / "docs" / "page-watch-phone.png"
TRANSCRIPT_SCREENSHOT = ROOT / "docs" / "page-transcript.png"
PARALLEL_SCREENSHOT = ROOT / "docs" / "page-parallel.png"
PHONE_SCREENSHOT = ROOT / "docs" / "page-phone.png"


def drive(script: str, *args: str | Path) -> dict[str, Any]:
    """Run one of web/tests' browser scripts; what it saw, as it printed it."""
    run = subprocess.run(
        ["node", str(ROOT / "web" / "tests" / script), *map(str, args)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    seen: dict[str, Any] = json.loads(run.stdout.strip().splitlines()[-1])
    return seen


@pytest.mark.timeout(900)
def test_the_page_runs_a_job_live_survives_a_refresh_and_plays_highlights_and_their_clips(
    stack: Stack,
) -> None:
    seen = drive("page.mjs", f"{stack.api_url}/", SCREENSHOT, WATCH_PHONE_SCREENSHOT)

    assert seen["page_errors"] == []
    # Live, in the job's view and in its row of "Your jobs".
    assert len([value for value in seen["progress_seen"] if 0 < value < 1]) >= 2, "bars moved live"
    assert len([value for value in seen["row_progress_seen"] if 0 < value < 1]) >= 2
    assert "firestore" in seen["live_via"]
    assert seen["row_status_while_running"] == "running"
    assert seen["status_when_player_came"] == "running", "the recording plays before the end"
    # A refresh mid-job comes back to the same job, which carries on to its end.
    assert seen["status_before_refresh"] == "running"
    assert seen["job_id_after_refresh"] == seen["job_id"]
    assert seen["status_after_refresh"] == "succeeded"
    assert seen["row_status_after"] == "succeeded"
    assert seen["row_length"] == "1:30 recording"
    assert seen["cost"].startswith("spent $"), "what the job cost shows"
    assert len(seen["stages"]) == 10
    # The sample is generated noise and tones: the page submits it with transcription off.
    assert [s for s in seen["stages"] if not s.endswith(":succeeded")] == ["transcribe:skipped"]
    assert 1 <= len(seen["highlights"]) <= 3
    # "0:20 to 0:25 · score 0.80" (an en dash between the times), then why
    assert all(re.match(r"\d+:\d\d\u2013\d+:\d\d · score \d\.\d\d", t) for t in seen["highlights"])
    names = [stage.split(":")[0] for stage in seen["stages"]]
    notes = [
        note for name, note in zip(names, seen["stage_notes"], strict=True) if name != "transcribe"
    ]
    assert notes == [""] * 9, "finished stages show no stale progress note"
    # The timeline under the player: a span per highlight, the cuts, loudness and chat rate.
    timeline = seen["timeline"]
    assert len(timeline["spans"]) == len(seen["highlights"])
    assert timeline["cuts"] >= 3
    assert timeline["bands"] == ["loudness", "chat"]
    assert timeline["ticks"][0] == "0:00"
    assert timeline["ticks"][-1] == "1:30"
    assert seen["video_before"]["duration"] == pytest.approx(90, abs=0.5)
    assert seen["video_before"]["time"] == 0
    # Clicking a highlight plays the recording from its start.
    moved = seen["after_highlight"]
    assert moved["start"] > 0
    assert moved["start"] <= moved["time"] < moved["start"] + 3
    # Clicking a point on the timeline, and its keys, move the player there.
    clicked = seen["after_timeline_click"]
    assert clicked["time"] == pytest.approx(clicked["share"] * 90, abs=1.0)
    assert seen["after_keys"]["time"] == pytest.approx(85, abs=0.1), "End, then 5 s back"
    assert seen["after_keys"]["valuetext"] == "1:25 of 1:30"
    # A highlight's clip plays under it (opened with the keyboard) and the recording pauses.
    clip, played = seen["clip"], seen["clip_played"]
    assert clip["name"].startswith("clip-2.")
    assert played["tag"] == "video"
    assert played["width"] > 0, "the clip's pictures decode"
    lead_in = max(0, clip["start"] - clip["clip_start"] - 1)
    # First seen as it opened (it may have played a little already), then later on.
    assert lead_in <= seen["clip_from"] < lead_in + 1, "from a second before the highlight"
    assert played["ended"] or played["time"] > lead_in + 0.5, "the clip played on"
    assert played["duration"] == pytest.approx(clip["end"] - clip["clip_start"], abs=0.5)
    assert seen["recording_was_playing"]
    assert played["recording_paused"]
    # Its download link saves the clip itself, under its own name.
    assert seen["clip_download"] == {
        "name": clip["name"],
        "size_bytes": clip["size_bytes"],
        "box": "ftyp",
        "same_bytes": True,
    }
    # Later, the job opens from the list with the keyboard alone, its focus visible.
    assert not seen["job_shown_before_opening"]
    assert seen["focused_row"] == seen["job_id"]
    assert seen["focus_outline"] == "solid 3px"
    opened = seen["opened_from_list"]
    assert opened["url_job"] == opened["job_id"] == seen["job_id"]
    assert opened["highlights"] == len(seen["highlights"])
    assert opened["current_row"] == "true"
    # Cancel and retry from the rows, each row updated live; newest first.
    assert seen["cancelled_row"] == {"status": "cancelled", "cancel_shown": False}
    assert seen["failed_row"] == "failed"
    assert seen["retried_row"] == {"status": "succeeded", "retry_shown": False}
    assert seen["rows"] == seen["newest_first"]
    assert seen["still_open"] == seen["job_id"]
    # On a phone nothing runs off the side; the player and the timeline take the width.
    phone = seen["phone"]
    assert phone["overflow"] <= 0
    assert phone["player_width"] > 300
    assert phone["timeline_width"] == phone["player_width"]
    assert min(phone["rows_width"]) > 300
    assert SCREENSHOT.stat().st_size > 10_000
    assert WATCH_PHONE_SCREENSHOT.stat().st_size > 10_000


def test_stages_side_by_side_and_their_parts_move_live_through_a_refresh_on_a_phone(
    stack: Stack,
) -> None:
    seen = drive("parallel.mjs", f"{stack.api_url}/", PARALLEL_SCREENSHOT, PHONE_SCREENSHOT)
    before, after = seen["before_refresh"], seen["after_refresh"]

    assert seen["page_errors"] == []
    # Chosen and started with the keyboard alone.
    assert seen["diagnostic_fields_shown"]
    assert not seen["media_fields_shown"]
    assert seen["focus_path"] == [
        *("diagnostic", "diag-steps", "diag-parts", "diag-seconds", "diag-parallel", "submit")
    ]
    assert "firestore" in seen["live_via"]
    # Two stage bars ran at the same moment, and both moved while they did.
    assert before["most_running_at_once"] >= 2
    assert "step-2+step-3" in before["moved_together"] + after["moved_together"]
    assert before["headlines_while_several_ran"] == [1], "one of them is the headline"
    # Parts running now had bars of their own, part way.
    assert any(0 < value < 1 for value in before["part_bar_values"] + after["part_bar_values"])
    # The parts counter moved up to the total, on every stage.
    counts = {
        name: set(before["parts_seen"][name]) | set(after["parts_seen"][name])
        for name in before["parts_seen"]
    }
    assert all("6/6 parts" in seen_counts for seen_counts in counts.values()), counts
    assert any(len(seen_counts) >= 3 for seen_counts in counts.values()), "counted up live"
    # A refresh mid-job came back to the same job and carried on live to its end.
    assert seen["status_before_refresh"] == "running"
    assert seen["job_id_after_refresh"] == seen["job_id"]
    assert {"running", "succeeded"} <= set(after["statuses"])
    assert [(row["state"], row["parts"], row["part_bars"]) for row in seen["final"]] == [
        ("succeeded", "6/6 parts", 0)
    ] * 4
    # On a phone nothing runs off the side and each stage's bar takes the width.
    assert seen["phone"]["overflow"] <= 0
    assert min(seen["phone"]["bar_widths"]) > 300
    assert PARALLEL_SCREENSHOT.stat().st_size > 10_000
    assert PHONE_SCREENSHOT.stat().st_size > 10_000


# A word said twice in the recording (LibriVox's "Sense and Sensibility"), which the embedded
# engine hears both times.
SAID = "amiable"


def _says(text: str, words: str) -> bool:
    """Whether `words` are said in `text`, whole and in a row, case aside."""
    return f" {words.lower()} " in f" {' '.join(text.lower().split())} "


@pytest.mark.timeout(900)
def test_the_transcript_shows_live_follows_playback_searches_and_plays_from_its_lines(
    stack: Stack, spoken: Spoken
) -> None:
    seen = drive("transcript.mjs", f"{stack.api_url}/", spoken.path, TRANSCRIPT_SCREENSHOT, SAID)
    lines = seen["lines"]
    first, last = seen["after_first_click"], seen["after_last_click"]

    assert seen["page_errors"] == []
    # While the job ran, the lines transcribed so far showed; the whole transcript replaced them.
    heard = seen["heard_while_running"]
    assert heard is not None, "lines were heard before the job ended"
    assert heard["status"] == "running"
    assert heard["lines"]
    assert {line["start"] for line in heard["lines"]} <= {line["start"] for line in lines}
    assert not seen["heard_shown_after"]
    assert seen["player"] == "audio", "a WAV plays in an audio element"
    assert seen["transcript_shown"]
    assert len(lines) >= 3
    assert all(line["text"] for line in lines)
    assert [line["start"] for line in lines] == sorted(line["start"] for line in lines)
    assert lines[0]["start"] == pytest.approx(spoken.places[0][0], abs=1.0)
    # More lines than the box shows, so following playback means scrolling it.
    assert seen["list_height"]["scroll"] > seen["list_height"]["client"]
    # The last line: playing from its start, marked, scrolled into view.
    assert lines[-1]["start"] <= last["time"] < lines[-1]["start"] + 2
    assert last["marked"] == len(lines) - 1
    assert last["marked_in_view"]
    assert last["scroll_top"] > 0
    # Back to the first: marked and in view; playback alone then moves the mark on.
    assert lines[0]["start"] <= first["time"] < lines[0]["start"] + 2
    assert first["marked"] == 0
    assert first["marked_in_view"]
    assert seen["later"]["marked"] == 1
    assert seen["later"]["time"] >= lines[1]["start"]
    assert seen["later"]["marked_in_view"]
    # Each highlight lists the lines said in it, as the job's result has them; one plays.
    assert seen["highlight_lines"] == seen["result_highlight_lines"]
    assert any(seen["highlight_lines"]), "speech was said in a highlight"
    played = seen["after_highlight_line"]
    assert played["start"] <= played["time"] < played["start"] + 2
    # Searching finds the word said (typed in capitals), marked, in exactly the lines saying it.
    assert SAID in spoken.text.lower()
    saying = [line["text"] for line in lines if _says(line["text"], SAID)]
    word = seen["found_word"]
    assert saying, f"the engine heard {SAID!r}"
    assert [line["text"] for line in word["lines"]] == saying
    assert all(line["marked"] == [SAID] for line in word["lines"])
    assert word["count"] == (
        "1 line says that" if len(saying) == 1 else f"{len(saying)} lines say that"
    )
    # Enter in the box plays the first line found, a click the last; the down arrow reaches it.
    found = word["lines"]
    assert found[0]["start"] <= seen["after_enter"]["time"] < found[0]["start"] + 2
    assert found[-1]["start"] <= seen["after_found_click"]["time"] < found[-1]["start"] + 2
    assert seen["focused_after_arrow"] == found[0]["start"]
    # A phrase finds its words in a row; nothing said shows nothing; a blank search shows all.
    phrase = seen["found_phrase"]
    assert lines[-1]["text"] in [line["text"] for line in phrase["lines"]]
    assert all(_says(line["text"], seen["phrase"]) for line in phrase["lines"])
    assert seen["found_nothing"] == {"count": "no line says that", "lines": []}
    assert len(seen["found_all"]["lines"]) == len(lines)
    assert seen["found_all"]["count"] == ""
    assert TRANSCRIPT_SCREENSHOT.stat().st_size > 10_000
