"""Fixtures of the CLI's tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.commands import Cli, run_cli
from tests.support import Stack


@pytest.fixture
def cli(stack: Stack, tmp_path: Path) -> Cli:
    """The CLI as one person at one machine (one remembered sign-in)."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return run_cli(stack, *args, config_home=tmp_path / "config")

    return run
