"""The CLI's calls to the API: a signed-in client, and answers that end the command with a clear
line (and exit code 1) when the API refuses or cannot be reached."""

from __future__ import annotations

import os
from typing import Any, NoReturn
from urllib.parse import urlparse

import httpx
import typer
from rich.console import Console

from cli.outcomes import ExitCode
from cli.session import api_client
from jobs.cloud.identity import SignInError

err = Console(stderr=True)


def unreachable(api_url: str, exc: Exception) -> NoReturn:
    err.print(f"[red]Cannot reach the API at {api_url}: {exc}. Is `make dev` running?[/]")
    raise typer.Exit(ExitCode.FAILED)


def client(api_url: str) -> httpx.Client:
    """An API client signed in as the CLI's user."""
    try:
        return api_client(api_url)
    except httpx.HTTPError as exc:
        unreachable(api_url, exc)
    except SignInError as exc:
        err.print(f"[red]Cannot sign in: {exc}[/]")
        raise typer.Exit(ExitCode.FAILED) from None


def refused(response: httpx.Response) -> NoReturn:
    """Say what the API's problem answer says (each field's error too), and exit 1."""
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {"detail": response.text[:200]}
    err.print(f"[red]{response.status_code} {body.get('code')}: {body.get('detail')}[/]")
    for field_error in body.get("errors") or []:
        err.print(f"  {field_error['field']}: {field_error['message']}")
    raise typer.Exit(ExitCode.FAILED)


def call(
    api_url: str, method: str, path: str, payload: Any = None, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """One API call; its JSON body, or the command ends saying why not."""
    try:
        with client(api_url) as api_session:
            response = api_session.request(method, path, json=payload, params=params)
    except httpx.HTTPError as exc:
        unreachable(api_url, exc)
    except SignInError as exc:  # signing in again, after the API refused the saved user
        err.print(f"[red]Cannot sign in: {exc}[/]")
        raise typer.Exit(ExitCode.FAILED) from None
    if response.is_error:
        refused(response)
    body: dict[str, Any] = response.json() if response.content else {}
    return body


def use_local_emulator_for(api_url: str) -> None:
    # Google's client finds the emulator through this variable; against a local API with no
    # emulator named, the local stack's own Firestore emulator is the one it means.
    host = urlparse(api_url).hostname or ""
    if host in ("127.0.0.1", "localhost", "::1") and "FIRESTORE_EMULATOR_HOST" not in os.environ:
        os.environ["FIRESTORE_EMULATOR_HOST"] = "127.0.0.1:8080"
        os.environ.setdefault("GOOGLE_CLOUD_PROJECT", "longrun-local")
