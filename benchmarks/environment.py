"""What every benchmark needs first: the emulators, and a note of the machine it ran on."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from google.cloud import firestore

from deploy.local import emulators
from jobs.contract.models import JobStatus

PROJECT = "longrun-bench"


@contextlib.contextmanager
def emulators_running(log_dir: Path) -> Iterator[list[emulators.Emulator]]:
    """Use the emulators the environment names, or start them on free ports for the run; yields
    the ones it started (their CPU use can be measured)."""
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    started = emulators.start_missing(project, log_dir)
    try:
        yield started
    finally:
        for emulator in started:
            emulator.stop()


def process_group_cpu_seconds(pgid: int) -> float:
    """CPU time (user + system) used so far by the live processes of one process group."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid:
            total += int(fields[11]) + int(fields[12])
    return total / ticks


def wait_all_finished(
    db: firestore.Client, collection: str, ids: list[str], timeout: float
) -> list[dict[str, Any]]:
    """The job documents once every one is terminal (or as they are when `timeout` runs out)."""
    jobs = db.collection(collection)
    deadline = time.monotonic() + timeout
    while True:
        docs = [d.to_dict() or {} for d in db.get_all([jobs.document(i) for i in ids])]
        if all(JobStatus(d["status"]).terminal for d in docs) or time.monotonic() > deadline:
            return docs
        time.sleep(0.25)


def standalone(
    prefix: str, json_path: Path | None, run: Callable[[Path, list[emulators.Emulator]], Any]
) -> None:
    """Run one benchmark on its own: emulators in a scratch directory, results printed as JSON
    and, if asked, written to `json_path`."""
    with tempfile.TemporaryDirectory(prefix=f"longrun-{prefix}-") as directory:
        work = Path(directory)
        with emulators_running(work) as started:
            result = run(work, started)
    text = json.dumps(result, indent=2, default=str)
    print(text)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(text + "\n")
