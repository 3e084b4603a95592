"""The service and the processor as local processes, started the way the container starts them.

The processor is one process, or with `processors > 1` a fleet of that many processes behind the
one push endpoint (deploy/local/fleet.py), as Cloud Run runs a service on several instances.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

from deploy.local.processes import ManagedProcess

AppName = Literal["service", "processor"]
HOST = "127.0.0.1"
MAX_PROCESSORS = 32


def app_process(
    app: AppName,
    port: int,
    env: dict[str, str],
    log_dir: Path | None,
    grace_seconds: float = 8,
    name: str | None = None,
    own_group: bool = True,
) -> ManagedProcess:
    """The service or the processor under uvicorn, logging to `<name>.log` (default: the app's)."""
    args = [
        sys.executable, "-m", "uvicorn", f"{app}.app:create_app", "--factory",
        "--host", HOST, "--port", str(port), "--timeout-graceful-shutdown", f"{grace_seconds:g}",
    ]  # fmt: skip
    name = name or app
    log_path = log_dir / f"{name}.log" if log_dir else None
    return ManagedProcess(name=name, args=args, env=env, log_path=log_path, own_group=own_group)


def processor_process(
    port: int,
    env: dict[str, str],
    log_dir: Path | None,
    processors: int = 1,
    grace_seconds: float = 8,
) -> ManagedProcess:
    """What serves the processor on `port`: the processor itself, or a fleet of `processors`.

    One processor is the bare process, exactly as before fleets existed (`processor.log`); a
    fleet logs to `processor-fleet.log`, and each of its processes to `processor-<i>.log`.
    """
    if not 1 <= processors <= MAX_PROCESSORS:
        raise ValueError(f"processors must be between 1 and {MAX_PROCESSORS}, not {processors}")
    if processors == 1:
        return app_process("processor", port, env, log_dir, grace_seconds)
    args = [
        sys.executable, "-m", "deploy.local.fleet", "--port", str(port),
        "--processors", str(processors), "--grace-seconds", f"{grace_seconds:g}",
    ]  # fmt: skip
    if log_dir is not None:
        args += ["--log-dir", str(log_dir)]
    log_path = log_dir / "processor-fleet.log" if log_dir else None
    return ManagedProcess(name="processor", args=args, env=env, log_path=log_path)


def processor_log_paths(log_dir: Path, processors: int) -> list[Path]:
    """The log of each processor process, in instance order."""
    if processors == 1:
        return [log_dir / "processor.log"]
    return [log_dir / f"processor-{index}.log" for index in range(1, processors + 1)]
