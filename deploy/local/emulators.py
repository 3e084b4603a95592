"""The emulators of the local stack: Google's Firestore and Pub/Sub emulators (gcloud), the Firebase
Auth emulator (firebase-tools from npm) and a Cloud Storage emulator (PyPI)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deploy.local.processes import ManagedProcess, StackError, free_port, wait_until_ready

REPOSITORY = Path(__file__).parents[2]
FIREBASE = REPOSITORY / "node_modules" / ".bin" / "firebase"
FIREBASE_CONFIG = REPOSITORY / "firebase.json"
AUTH_START_SECONDS = 600

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
    if not FIREBASE.exists():
        raise StackError(
            "firebase-tools (the Auth emulator) is not installed: run `npm ci` in the repository "
            "(Node.js 20 or newer)."
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


def start_auth(port: int, project: str, log_dir: Path, host: str = "127.0.0.1") -> Emulator:
    """The Firebase Auth emulator. It accepts and issues unsigned ID tokens: local use only.

    The committed firebase.json (UI off: it would be downloaded at start) is copied with this
    run's ports, so several stacks can run side by side; the hub and logging ports are free ones.
    """
    config = json.loads(FIREBASE_CONFIG.read_text())
    config["emulators"].update(
        auth={"host": host, "port": port},
        hub={"host": host, "port": free_port()},
        logging={"host": host, "port": free_port()},
    )
    config_path = log_dir / f"firebase-{port}.json"
    config_path.write_text(json.dumps(config, indent=2))
    args = [
        str(FIREBASE), "emulators:start", "--only=auth", f"--project={project}",
        f"--config={config_path}",
    ]  # fmt: skip
    # firebase-tools spends ~15 s of CPU loading itself (minutes on a machine at load 25: whoever
    # waits is told what for, so a long wait is no hang, and its death ends the wait at once), and
    # keeps a per-project locator file in TMPDIR that must not be shared between stacks.
    env = {"NO_UPDATE_NOTIFIER": "1", "TMPDIR": str(log_dir)}
    return _start(
        "auth-emulator",
        args,
        f"{host}:{port}",
        log_dir,
        env=env,
        timeout_seconds=AUTH_START_SECONDS,
    )


def _start(
    name: str,
    args: list[str],
    host_port: str,
    log_dir: Path,
    env: dict[str, str] | None = None,
    timeout_seconds: float = 60,
) -> Emulator:
    log_dir.mkdir(parents=True, exist_ok=True)
    process = ManagedProcess(
        name=name, args=args, log_path=log_dir / f"{name}.log", env={**os.environ, **(env or {})}
    )
    process.start()
    try:
        wait_until_ready(f"http://{host_port}/", process, timeout_seconds=timeout_seconds)
    except StackError:
        process.stop()
        raise
    return Emulator(process=process, host_port=host_port)


def start_missing(project: str, log_dir: Path) -> list[Emulator]:
    """Start, on free ports and side by side, every emulator the environment does not name
    (FIRESTORE_, PUBSUB_, STORAGE_ and FIREBASE_AUTH_EMULATOR_HOST), and name it there."""
    starters: dict[str, Callable[[], Emulator]] = {
        "FIRESTORE_EMULATOR_HOST": lambda: start_firestore(free_port(), project, log_dir),
        "PUBSUB_EMULATOR_HOST": lambda: start_pubsub(free_port(), project, log_dir),
        "STORAGE_EMULATOR_HOST": lambda: start_storage(free_port(), log_dir),
        "FIREBASE_AUTH_EMULATOR_HOST": lambda: start_auth(free_port(), project, log_dir),
    }
    missing = {name: start for name, start in starters.items() if name not in os.environ}
    with ThreadPoolExecutor(max_workers=len(missing) or 1) as pool:
        futures = {name: pool.submit(start) for name, start in missing.items()}
    started: list[Emulator] = []
    failures: list[BaseException] = []
    for name, future in futures.items():
        if (error := future.exception()) is not None:
            failures.append(error)
            continue
        emulator = future.result()
        started.append(emulator)
        os.environ[name] = emulator.url if name == "STORAGE_EMULATOR_HOST" else emulator.host_port
    if failures:
        for emulator in started:
            emulator.stop()
        raise failures[0]
    return started
