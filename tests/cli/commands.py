"""The CLI as a person runs it: the installed `longrun` command, in a process of its own."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

from tests.support import LONGRUN, Stack

Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    stack: Stack, *args: str, config_home: Path, timeout: float = 120, **env_overrides: str
) -> subprocess.CompletedProcess[str]:
    # The CLI signs in anonymously and remembers its user under XDG_CONFIG_HOME.
    env = {**os.environ, "COLUMNS": "120", "XDG_CONFIG_HOME": str(config_home), **env_overrides}
    return subprocess.run(
        [LONGRUN, *args, "--api", stack.api_url],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
