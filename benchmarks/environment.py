"""What every benchmark needs first: the emulators, and a note of the machine it ran on."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from deploy.local import emulators
from deploy.local.processes import free_port

PROJECT = "longrun-bench"


@contextlib.contextmanager
def emulators_running(log_dir: Path) -> Iterator[list[emulators.Emulator]]:
    """Use the emulators the environment names, or start them on free ports for the run; yields
    the ones it started (their CPU use can be measured)."""
    os.environ.setdefault("GOOGLE_CLOUD_PROJECT", PROJECT)
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    started: list[emulators.Emulator] = []
    try:
        if "FIRESTORE_EMULATOR_HOST" not in os.environ:
            started.append(emulators.start_firestore(free_port(), project, log_dir))
            os.environ["FIRESTORE_EMULATOR_HOST"] = started[-1].host_port
        if "PUBSUB_EMULATOR_HOST" not in os.environ:
            started.append(emulators.start_pubsub(free_port(), project, log_dir))
            os.environ["PUBSUB_EMULATOR_HOST"] = started[-1].host_port
        if "STORAGE_EMULATOR_HOST" not in os.environ:
            started.append(emulators.start_storage(free_port(), log_dir))
            os.environ["STORAGE_EMULATOR_HOST"] = started[-1].url
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
