"""A job's source as a person names it: a file here (uploaded first) or a URL longrun fetches."""

from __future__ import annotations

import os
from pathlib import Path

import httpx
from rich.console import Console
from rich.markup import escape

from cli.transfers import transfer_bars
from cli.uploading import upload_file

URL_SCHEMES = ("https://", "gs://")


class NotASource(ValueError):
    """Neither a readable file nor a URL longrun can fetch."""


def is_url(source: str) -> bool:
    return source.startswith(URL_SCHEMES)


def check_source(source: str) -> None:
    """Refuse, before anything is sent, what could never be a source."""
    if is_url(source):
        return
    path = Path(source)
    if not path.is_file() or not os.access(path, os.R_OK):
        raise NotASource(
            f"{source!r} is neither a readable file here nor an https:// or gs:// URL."
        )


def resolve_source(api: httpx.Client, source: str, console: Console) -> str:
    """A URL as it is; a local file uploaded (with a progress bar), as its upload id."""
    if is_url(source):
        return source
    path = Path(source)
    with transfer_bars(console) as bars:
        task = bars.add_task(f"Uploading {escape(path.name)}", total=path.stat().st_size)
        return upload_file(api, path, sent_bytes=lambda sent: bars.update(task, completed=sent))
