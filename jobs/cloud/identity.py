"""Signing in to Firebase Auth outside a browser, for the CLI, tests and benchmarks.

firebase-admin verifies ID tokens but cannot sign a user in, so this speaks the Identity Toolkit
and Secure Token REST APIs (what the Firebase JS SDK uses) with httpx. The same calls work against
the Auth emulator, which serves both APIs under its own host.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import httpx


class SignInError(Exception):
    """Firebase Auth refused; `reason` is its error message (e.g. EMAIL_NOT_FOUND)."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"Firebase Auth refused: {reason}")
        self.reason = reason


@dataclass(frozen=True)
class Tokens:
    uid: str
    id_token: str
    refresh_token: str
    expires_at: float  # Unix time

    @property
    def fresh(self) -> bool:
        return self.expires_at - time.time() > 60


@dataclass(frozen=True)
class IdentityToolkit:
    """One Firebase project's sign-in endpoints: `api_key` is the web API key."""

    api_key: str
    emulator_host: str | None = None  # host:port of the Auth emulator

    def sign_up(self, email: str | None = None, password: str | None = None) -> Tokens:
        """A new user: anonymous without an email."""
        body: dict[str, Any] = {"returnSecureToken": True}
        if email is not None:
            body.update(email=email, password=password)
        return self._tokens(self._post("identitytoolkit.googleapis.com", "accounts:signUp", body))

    def sign_in(self, email: str, password: str) -> Tokens:
        body = {"email": email, "password": password, "returnSecureToken": True}
        return self._tokens(
            self._post("identitytoolkit.googleapis.com", "accounts:signInWithPassword", body)
        )

    def user(self, email: str, password: str) -> Tokens:
        """Sign in as this email user, creating the account the first time."""
        try:
            return self.sign_in(email, password)
        except SignInError as exc:
            if not exc.reason.startswith(("EMAIL_NOT_FOUND", "INVALID_LOGIN_CREDENTIALS")):
                raise
        try:
            return self.sign_up(email, password)
        except SignInError as exc:
            if not exc.reason.startswith("EMAIL_EXISTS"):
                raise
            return self.sign_in(email, password)  # someone else created it meanwhile

    def refresh(self, tokens: Tokens) -> Tokens:
        body = {"grant_type": "refresh_token", "refresh_token": tokens.refresh_token}
        answer = self._post("securetoken.googleapis.com", "token", body)
        return Tokens(
            uid=answer["user_id"],
            id_token=answer["id_token"],
            refresh_token=answer["refresh_token"],
            expires_at=time.time() + int(answer["expires_in"]),
        )

    def _post(self, service: str, method: str, body: dict[str, Any]) -> dict[str, Any]:
        base = (
            f"http://{self.emulator_host}/{service}" if self.emulator_host else f"https://{service}"
        )
        response = httpx.post(
            f"{base}/v1/{method}", params={"key": self.api_key}, json=body, timeout=30
        )
        if response.is_error:
            try:
                reason = str(response.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                response.raise_for_status()
                raise
            raise SignInError(reason)
        answer: dict[str, Any] = response.json()
        return answer

    @staticmethod
    def _tokens(answer: dict[str, Any]) -> Tokens:
        return Tokens(
            uid=answer["localId"],
            id_token=answer["idToken"],
            refresh_token=answer["refreshToken"],
            expires_at=time.time() + int(answer["expiresIn"]),
        )
