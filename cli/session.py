"""The CLI's API client: signed in as a Firebase user, remembered between commands.

`LONGRUN_ID_TOKEN` wins when set (any sign-in method, e.g. a script's service user). Otherwise the
CLI signs in anonymously with the web API key the API publishes in `/config.json` (the service
must allow anonymous users) and keeps the refresh token in `~/.config/longrun/credentials.json`
(mode 600), per API URL, so later commands act as the same user and see the same jobs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Generator
from dataclasses import asdict
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import httpx

from jobs.cloud.identity import IdentityToolkit, SignInError, Tokens

# Refresh answers meaning the saved user is no more: only then is a new one made.
_USER_GONE = ("INVALID_REFRESH_TOKEN", "TOKEN_EXPIRED", "USER_NOT_FOUND", "USER_DISABLED")


def credentials_path() -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(config_home) / "longrun" / "credentials.json"


def api_client(api_url: str) -> httpx.Client:
    """An httpx client on the API that sends the user's ID token."""
    token = os.environ.get("LONGRUN_ID_TOKEN")
    if token:
        return httpx.Client(
            base_url=api_url, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )
    _signed_in(api_url)  # now, so that a sign-in that fails says so before any request
    return httpx.Client(base_url=api_url, auth=_SavedUser(api_url), timeout=30)


class _SavedUser(httpx.Auth):
    """Sends the saved user's ID token; when the API refuses it (401: revoked, or a local Auth
    emulator started afresh since, which forgot every user), signs in again once and resends."""

    def __init__(self, api_url: str) -> None:
        self._api_url = api_url

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = f"Bearer {_signed_in(self._api_url).id_token}"
        response = yield request
        if response.status_code == 401:
            fresh = _signed_in(self._api_url, again=True)
            request.headers["Authorization"] = f"Bearer {fresh.id_token}"
            yield request


def _signed_in(api_url: str, again: bool = False) -> Tokens:
    saved = _load()
    known = saved.get(api_url)
    tokens = Tokens(**known) if known else None
    if tokens is not None and tokens.fresh and not again:
        return tokens
    toolkit = _toolkit(api_url)
    try:
        tokens = toolkit.refresh(tokens) if tokens else toolkit.sign_up()
    except SignInError as exc:
        if not exc.reason.startswith(_USER_GONE):
            raise  # e.g. TOO_MANY_ATTEMPTS_TRY_LATER: keep the user, try again later
        tokens = toolkit.sign_up()  # e.g. a local Auth emulator that was restarted
    saved[api_url] = asdict(tokens)
    _save(saved)
    return tokens


def _toolkit(api_url: str) -> IdentityToolkit:
    config: dict[str, Any] = (
        httpx.get(f"{api_url}/config.json", timeout=30).raise_for_status().json()
    )
    firebase = config.get("firebase") or {}
    if not firebase.get("apiKey"):
        raise SignInError(
            "the API publishes no Firebase web API key; set LONGRUN_ID_TOKEN to an ID token"
        )
    emulator = config.get("authEmulator")
    return IdentityToolkit(firebase["apiKey"], urlparse(emulator).netloc if emulator else None)


def _load() -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads(credentials_path().read_text())
    except (OSError, ValueError):
        return {}
    return loaded


def _save(saved: dict[str, Any]) -> None:
    path = credentials_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)  # also when the file was made otherwise
    path.write_text(json.dumps(saved, indent=2))
