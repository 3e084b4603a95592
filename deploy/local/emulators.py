"""Google's own Firestore and Pub/Sub emulators, started with gcloud."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from deploy.local.processes import ManagedProcess, StackError, wait_until_ready

_COMPONENTS = {
    "cloud-firestore-emulator": ("google-cloud-cli-firestore-emulator", "cloud-firestore-emulator"),
    "pubsub-emulator": ("google-cloud-cli-pubsub-emulator", "pubsub-emulator"),
}


def check_requirements() -> None:
    """Raise StackError with one sentence naming what to install, if anything is missing."""
    if shutil.which("gcloud") is None:
        raise StackError(
            "gcloud is not installed: install the Google Cloud CLI "
            "(Debian/Ubuntu: apt-get install google-cloud-cli)."
        )
    if shutil.which("java") is None:
        raise StackError(
            "Java is not installed, and the emulators need it: install a JRE 17 or newer "
            "(Debian/Ubuntu: apt-get install openjdk-17-jre-headless)."
        )
    platform = _sdk_root() / "platform"
    for directory, (package, component) in _COMPONENTS.items():
        if not (platform / directory).is_dir():
            raise StackError(
                f"The {component} is not installed: apt-get install {package} "
                f"(or gcloud components install {component})."
            )


def _sdk_root() -> Path:
    result = subprocess.run(
        ["gcloud", "info", "--format=value(installation.sdk_root)"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    root = result.stdout.strip()
    if result.returncode != 0 or not root:
        raise StackError(f"gcloud does not work here: {result.stderr.strip()[:200]}")
    return Path(root)


@dataclass
class Emulator:
    """One running emulator: its process and the host:port clients reach it on."""

    process: ManagedProcess
    host_port: str
    url: str = ""

    def stop(self) -> None:
        self.process.stop()


def start_firestore(
    port: int, project: str, log_dir: Path, rules: Path | None = None, host: str = "127.0.0.1"
) -> Emulator:
    args = ["gcloud", "beta", "emulators", "firestore", "start", f"--host-port={host}:{port}"]
    if rules is not None:
        args.append(f"--rules={rules}")
    return _start("firestore-emulator", args, f"{host}:{port}", log_dir)


def start_pubsub(port: int, project: str, log_dir: Path, host: str = "127.0.0.1") -> Emulator:
    args = [
        "gcloud", "beta", "emulators", "pubsub", "start",
        f"--host-port={host}:{port}", f"--project={project}",
    ]  # fmt: skip
    return _start("pubsub-emulator", args, f"{host}:{port}", log_dir)


def start_storage(port: int, log_dir: Path, host: str = "127.0.0.1") -> Emulator:
    """Cloud Storage has no emulator from Google; gcp-storage-emulator (PyPI) speaks its JSON API
    well enough for Google's client (buckets, resumable uploads, ranged reads, copies)."""
    command = Path(sys.executable).with_name("gcp-storage-emulator")
    if not command.exists():
        raise StackError("gcp-storage-emulator is not installed: pip install gcp-storage-emulator.")
    args = [str(command), "start", f"--host={host}", f"--port={port}", "--in-memory"]
    emulator = _start("storage-emulator", args, f"{host}:{port}", log_dir)
    emulator.url = f"http://{host}:{port}"
    return emulator


def _start(name: str, args: list[str], host_port: str, log_dir: Path) -> Emulator:
    process = ManagedProcess(name=name, args=args, log_path=log_dir / f"{name}.log")
    process.start()
    try:
        wait_until_ready(f"http://{host_port}/", process, timeout_seconds=60)
    except StackError:
        process.stop()
        raise
    return Emulator(process=process, host_port=host_port)
