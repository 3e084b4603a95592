"""What the machine must have for `make dev`, `make test` and `longrun dev` (the README's
Prerequisites), checked in about a second before anything installs or starts: one line per
missing tool, with the command that installs it.

The Makefile runs this with the system's Python before any virtual environment exists, so it uses
the standard library only and still runs (to say so) on a Python older than the project needs.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

MIN_PYTHON = (3, 11)
MIN_JAVA = 17
MIN_NODE = 20
# What each command needs; every later one needs what the earlier ones do.
PURPOSES = ("install", "dev", "test")
# Where the page's browser test looks when CHROMIUM is not set (web/tests/browser.mjs).
DEFAULT_CHROMIUM = "/usr/bin/chromium"
_CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
_MACOS_BROWSERS = (
    "/Applications/Chromium.app/Contents/MacOS/Chromium",
    "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome",
)
_APT = "sudo apt-get install"
_GCLOUD_APT = f"{_APT} google-cloud-cli (from Google's apt repository: README.md)"
_GCLOUD_BREW = "brew install --cask gcloud-cli"
_COMPONENTS = "gcloud components install"
_NODESOURCE = f"curl -fsSL https://deb.nodesource.com/setup_20.x | sudo -E bash - && {_APT} nodejs"


class Need:
    """One thing a purpose needs: `problem()` says what is wrong, or None when all is well.
    (A plain class: dataclasses would cost this second-long check a tenth of it to import.)"""

    def __init__(
        self, purpose: str, problem: Callable[[], str | None], debian: str, macos: str
    ) -> None:
        self.purpose = purpose
        self.problem = problem
        self.debian = debian
        self.macos = macos

    def install_line(self) -> str:
        return self.macos if sys.platform == "darwin" else self.debian


def _version(command: list[str], pattern: str) -> int | None:
    """The major version a tool reports, or None if it does not run."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(pattern, done.stdout + done.stderr)
    return int(found.group(1)) if found else None


def _python() -> str | None:
    if sys.version_info >= MIN_PYTHON:
        return None
    found = ".".join(map(str, sys.version_info[:3]))
    return f"Python 3.11 or newer is needed ({sys.executable} is {found}; or make PYTHON=...)"


def _venv_module(venv: Path) -> Callable[[], str | None]:
    def problem() -> str | None:
        if (venv / "bin" / "python").exists() or importlib.util.find_spec("ensurepip"):
            return None
        return f"Python's venv module is not installed for {sys.executable}"

    return problem


def _command(name: str, what: str) -> Callable[[], str | None]:
    def problem() -> str | None:
        return None if shutil.which(name) else f"{what} is not installed"

    return problem


def _java() -> str | None:
    if not shutil.which("java"):
        return "java (Java 17 or newer, for the emulators) is not installed"
    major = _java_release()
    if major is None:  # no release file: ask java itself, which starts a JVM (seconds if busy)
        # `java -version` says "17.0.15" (or "1.8.0_292" up to Java 8, which is too old anyway).
        major = _version(["java", "-version"], r'version "(?:1\.)?(\d+)')
    if major is None:
        return "java is installed but does not run (or says no version)"
    if major < MIN_JAVA:
        return f"Java {MIN_JAVA} or newer is needed (java is version {major})"
    return None


def _java_release() -> int | None:
    """The major version in the `release` file every JDK and JRE keeps beside its bin/."""
    java = shutil.which("java")
    release = Path(os.path.realpath(java)).parents[1] / "release" if java else None
    try:
        text = release.read_text() if release else ""
    except OSError:
        return None
    found = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', text, re.MULTILINE)
    return int(found.group(1)) if found else None


def _node() -> str | None:
    if not shutil.which("node"):
        return "node (Node.js 20 or newer, with npm) is not installed"
    major = _version(["node", "--version"], r"v(\d+)")
    if major is None:
        return "node is installed but does not run (or says no version)"
    if major < MIN_NODE:
        return f"Node.js {MIN_NODE} or newer is needed (node is version {major})"
    if not shutil.which("npm"):
        return "npm (Node.js's package manager) is not installed"
    return None


def _gcloud_part(part: str, what: str) -> Callable[[], str | None]:
    """A part of the Google Cloud CLI's installation (`platform/pubsub-emulator` say), looked up
    beside the real gcloud script instead of by running gcloud, which takes seconds to start."""

    def problem() -> str | None:
        gcloud = shutil.which("gcloud")
        if gcloud is None:
            return None  # said once, by the gcloud check
        root = Path(os.path.realpath(gcloud)).parents[1]
        if not (root / "bin" / "gcloud").exists():
            return None  # not a layout to read (a snap, say): the emulators will say themselves
        return None if (root / part).exists() else f"{what} is not installed (in {root})"

    return problem


def find_chromium() -> str | None:
    """The Chromium (or Chrome) the page's browser test drives: $CHROMIUM, else the usual places."""
    if os.environ.get("CHROMIUM"):
        return os.environ["CHROMIUM"]
    on_path = [shutil.which(name) for name in _CHROMIUM_NAMES]
    places = [DEFAULT_CHROMIUM, *[p for p in on_path if p], *_MACOS_BROWSERS]
    return next((place for place in places if os.access(place, os.X_OK)), None)


def _chromium() -> str | None:
    return None if find_chromium() else "Chromium (for the page's browser test) is not installed"


def needs(venv: Path) -> list[Need]:
    """Everything any purpose needs, in the order the README lists it."""
    firestore = _gcloud_part("platform/cloud-firestore-emulator", "The Firestore emulator")
    pubsub = _gcloud_part("platform/pubsub-emulator", "The Pub/Sub emulator")
    shellcheck = _command("shellcheck", "shellcheck (for the deploy scripts' test)")
    return [
        Need("install", _python, f"{_APT} python3 python3-venv", "brew install python"),
        Need("install", _venv_module(venv), f"{_APT} python3-venv", "brew install python"),
        Need("install", _command("make", "make"), f"{_APT} make", "xcode-select --install"),
        Need("install", _node, _NODESOURCE, "brew install node"),
        Need("dev", _command("gcloud", "gcloud (the Google Cloud CLI)"), _GCLOUD_APT, _GCLOUD_BREW),
        Need("dev", _gcloud_part("lib/surface/beta", "gcloud's beta commands"), _GCLOUD_APT,
             f"{_COMPONENTS} beta"),
        Need("dev", firestore, f"{_APT} google-cloud-cli-firestore-emulator",
             f"{_COMPONENTS} cloud-firestore-emulator"),
        Need("dev", pubsub, f"{_APT} google-cloud-cli-pubsub-emulator",
             f"{_COMPONENTS} pubsub-emulator"),
        Need("dev", _java, f"{_APT} openjdk-17-jre-headless", "brew install --cask temurin@17"),
        Need("test", _chromium, f"{_APT} chromium", "brew install --cask google-chrome"),
        Need("test", shellcheck, f"{_APT} shellcheck", "brew install shellcheck"),
    ]  # fmt: skip


def missing(purpose: str, venv: Path = Path(".venv")) -> list[str]:
    """One line per missing prerequisite of `purpose`: what is wrong, then how to install it."""
    wanted = PURPOSES[: PURPOSES.index(purpose) + 1]
    found = [(need, need.problem()) for need in needs(venv) if need.purpose in wanted]
    return [f"{problem}: {need.install_line()}" for need, problem in found if problem]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("purpose", choices=PURPOSES, help="what is about to run")
    parser.add_argument("--venv", type=Path, default=Path(".venv"))
    args = parser.parse_args(argv)
    lines = missing(args.purpose, args.venv)
    if lines:
        print(  # noqa: T201
            f"Missing for `make {args.purpose}` (README.md, Prerequisites), with the command "
            "that installs each:\n" + "\n".join(f"  {line}" for line in lines),
            file=sys.stderr,
        )
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
