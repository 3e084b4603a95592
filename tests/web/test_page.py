"""The demo page in a real browser (headless Chromium driven by playwright-core from npm)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from deploy.local.ephemeral import Stack

ROOT = Path(__file__).parents[2]
# Kept after the run, for a person to look at (CI keeps the working tree's artifacts).
SCREENSHOT = ROOT / ".longrun" / "test-artifacts" / "page.png"
# The pictures of parallel stages in the docs come from this test's run.
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


def test_the_page_runs_a_job_live_survives_a_refresh_and_shows_the_highlights(
    stack: Stack,
) -> None:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)

    seen = drive("page.mjs", f"{stack.api_url}/", SCREENSHOT)

    assert seen["page_errors"] == []
    assert len([value for value in seen["progress_seen"] if 0 < value < 1]) >= 2, "bars moved live"
    assert "firestore" in seen["live_via"]
    assert seen["status_before_refresh"] == "running"
    assert seen["job_id_after_refresh"] == seen["job_id"]
    assert seen["status_after_refresh"] == "succeeded"
    assert seen["cost"].startswith("spent $"), "what the job cost shows"
    assert len(seen["stages"]) == 8
    assert all(stage.endswith(":succeeded") for stage in seen["stages"])
    assert 1 <= len(seen["highlights"]) <= 3
    assert all("score" in text and " s " in text for text in seen["highlights"])
    assert seen["stage_notes"] == [""] * 8, "finished stages show no stale progress note"
    assert SCREENSHOT.stat().st_size > 10_000


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
