"""`longrun download`: a job's artifacts into a directory, each with a progress bar.

The API answers an artifact with a redirect to a short-lived signed URL (locally, with the bytes
themselves); httpx drops the ID token when it follows a redirect to another host.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import httpx
from rich.console import Console
from rich.markup import escape
from rich.progress import TaskID

from cli.transfers import transfer_bars
from jobs.contract.models import Artifact

CHUNK_BYTES = 256 * 1024


class DownloadError(Exception):
    """An artifact could not be saved; the message says which and why."""


@dataclass(frozen=True)
class Saved:
    name: str
    path: Path
    size_bytes: int
    content_type: str


def target(directory: Path, name: str) -> Path:
    """Where artifact `name` goes inside `directory`; never outside it, whatever the name."""
    parts = PurePosixPath(name).parts
    if not parts or name.startswith("/") or any(p in ("..", ".") or "\\" in p for p in parts):
        raise DownloadError(f"The artifact name {name!r} is not a safe file name.")
    return directory.joinpath(*parts)


def download_artifacts(
    api: httpx.Client,
    job_id: str,
    artifacts: dict[str, Artifact],
    directory: Path,
    console: Console,
) -> list[Saved]:
    """Save each artifact under `directory`, showing a bar per file; a file appears only once
    all of it has arrived."""
    paths = {name: target(directory, name) for name in artifacts}
    saved = []
    with transfer_bars(console) as bars:
        for name, artifact in artifacts.items():
            task = bars.add_task(escape(name), total=artifact.size_bytes)

            def got_bytes(got: int, task: TaskID = task) -> None:
                bars.update(task, completed=got)

            route = f"/v1/jobs/{job_id}/artifacts/{name}"
            _fetch(api, route, paths[name], artifact.size_bytes, got_bytes)
            saved.append(Saved(name, paths[name], artifact.size_bytes, artifact.content_type))
    return saved


def _fetch(
    api: httpx.Client, route: str, path: Path, size_bytes: int, got_bytes: Callable[[int], None]
) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.part")
    got = 0
    with api.stream("GET", route, follow_redirects=True) as response:
        if response.is_error:
            response.read()
            raise DownloadError(f"{path.name}: {_problem(response)}")
        with partial.open("wb") as file:
            for chunk in response.iter_bytes(CHUNK_BYTES):
                file.write(chunk)
                got += len(chunk)
                got_bytes(got)
    if got != size_bytes:
        partial.unlink()
        raise DownloadError(f"{path.name}: {got} bytes arrived of {size_bytes}.")
    partial.replace(path)


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
        return f"{response.status_code} {body.get('code')}: {body.get('detail')}"
    except (ValueError, AttributeError):
        return f"{response.status_code} {response.text[:200]}"
