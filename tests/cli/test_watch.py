"""`longrun watch` follows a job live: a bar per stage, several moving at once, parts counted."""

from __future__ import annotations

import json
import queue
import re
from pathlib import Path

import pytest

from cli import watch
from jobs.contract.models import Job
from tests.cli.commands import Cli, run_cli
from tests.support import Stack, a_job

# Steps 2 and 3 side by side, every step split into 4 parts of about 2 s each.
PARALLEL_FAN_OUT = {
    "stages": 4,
    "parallel": True,
    "items": 4,
    "work_units": 20,
    "unit_seconds": 0.1,
    "unit_kib": 16,
}
# rich redraws its bars in place: it moves up and erases the lines it drew before each frame.
_REDRAW = re.compile(r"\x1b\[2K(?:\x1b\[1A\x1b\[2K)*")
_ESCAPE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_STAGE_LINE = re.compile(r"^Diagnostic step (\d) of 4 (.*)$", re.MULTILINE)
_PARTS_DONE = re.compile(r"(\d+)/4 parts")


def frames(terminal_output: str) -> list[dict[int, str]]:
    """Every frame the terminal showed: each step's line (after its label) by step number."""
    shown = []
    for frame in _REDRAW.split(terminal_output):
        lines = {int(n): rest for n, rest in _STAGE_LINE.findall(_ESCAPE.sub("", frame))}
        if lines:
            shown.append(lines)
    return shown


def test_watch_shows_stages_side_by_side_and_counts_their_parts(
    stack: Stack, cli: Cli, tmp_path: Path
) -> None:
    submitted = cli("submit", "diagnostic", "--input", json.dumps(PARALLEL_FAN_OUT))
    job_id = submitted.stdout.split("Submitted job ")[1].split()[0]

    # As in a terminal, so every frame is kept (and as the same remembered user as `cli`).
    result = run_cli(
        stack, "watch", job_id, config_home=tmp_path / "config", FORCE_COLOR="1", TERM="xterm"
    )

    assert result.returncode == 0, result.stderr
    assert "Job succeeded" in result.stdout
    shown = frames(result.stdout)
    assert any(" running " in f.get(2, "") and " running " in f.get(3, "") for f in shown), (
        "steps 2 and 3 never showed as running at the same time"
    )
    counted = {
        int(done) for f in shown for line in f.values() for done in _PARTS_DONE.findall(line)
    }
    # Up from 0 to the total, through values between (two parts ending in one second of
    # coalesced progress writes show as one step of two, so not necessarily through each).
    assert {0, 4} <= counted, f"the parts counter showed only {counted}"
    assert len(counted) >= 3, f"the parts counter jumped from none to all: {counted}"
    part_bars = re.compile(r"running \d/4 parts · #\d[▁▂▃▄▅▆▇█]")
    assert any(part_bars.search(line) for f in shown for line in f.values()), (
        "no part running showed its own progress"
    )
    assert all("succeeded 4/4 parts" in shown[-1][n] for n in range(1, 5)), shown[-1]


def test_watch_refuses_a_job_the_caller_cannot_see(cli: Cli) -> None:
    result = cli("watch", "no-such-job")

    assert result.returncode == 1
    assert "404 JOB_NOT_FOUND" in result.stderr


def test_a_listener_gone_quiet_is_started_again_once_the_api_shows_a_change_it_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A Firestore listener whose stream broke stops calling back without a word: the watch
    # would otherwise go on by polling only, a few seconds behind, for the rest of the job.
    monkeypatch.setattr(watch, "QUIET_SECONDS", 0.01)
    updates: queue.Queue[Job | None] = queue.Queue()
    updates.put(a_job(version=1))
    on_the_api = [a_job(version=2)]
    listeners_started: list[int] = []

    def listen_again() -> None:  # a new listener's first snapshot: the job as it is now
        listeners_started.append(1)
        updates.put(a_job(version=3))

    def poll() -> Job | None:
        if not on_the_api:
            raise AssertionError("the watch went on polling: no listener was started again")
        return on_the_api.pop()

    next_change = watch._changes(updates, poll, listen_again)

    assert [next_change().version for _ in range(3)] == [1, 2, 3]  # type: ignore[union-attr]
    assert listeners_started == [1]
