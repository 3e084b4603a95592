"""The demo page in a real browser (headless Chromium driven by playwright-core from npm)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from deploy.local.ephemeral import Stack

ROOT = Path(__file__).parents[2]
# Kept after the run, for a person to look at (CI keeps the working tree's artifacts).
SCREENSHOT = ROOT / ".longrun" / "test-artifacts" / "page.png"


def test_the_page_runs_a_job_live_survives_a_refresh_and_shows_the_highlights(
    stack: Stack,
) -> None:
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)

    run = subprocess.run(
        ["node", str(ROOT / "web" / "tests" / "page.mjs"), f"{stack.api_url}/", str(SCREENSHOT)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=ROOT,
    )

    assert run.returncode == 0, run.stderr[-3000:]
    seen = json.loads(run.stdout.strip().splitlines()[-1])
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
