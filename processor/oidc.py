"""The OIDC token Pub/Sub push (and Cloud Scheduler) sends with every request, checked here too.

Cloud Run already refuses callers without the invoker role; checking the token in the app as well
means a misconfigured service (made public by mistake) still runs stages only for the push
account. On when `LONGRUN_PUSH_AUTH_SERVICE_ACCOUNT` names that account; off locally, where the
emulator sends no token.

Refusals: no token, an unreadable one, a bad signature, an expired token, a wrong issuer or a
wrong audience are 401 (the token does not authenticate anyone to this service); a valid token of
another account, or one whose email is not verified, is 403 (authenticated, not allowed).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

import google.auth.exceptions
import google.auth.transport.requests
import requests
from cachecontrol import CacheControl
from fastapi import Request
from google.oauth2 import id_token

from jobs.contract.errors import LongrunError, Unavailable
from jobs.contract.settings import Settings

log = logging.getLogger(__name__)

GOOGLE_ISSUERS = ("accounts.google.com", "https://accounts.google.com")
_CLOCK_SKEW_SECONDS = 10


class PushUnauthenticated(LongrunError):
    """401, with the challenge RFC 6750 asks for."""

    code = "PUSH_UNAUTHENTICATED"
    http_status = 401

    def __init__(self, message: str, *, code: str | None = None) -> None:
        super().__init__(message, code=code, headers={"WWW-Authenticate": "Bearer"})


class PushForbidden(LongrunError):
    code = "PUSH_FORBIDDEN"
    http_status = 403


def _caching_request() -> google.auth.transport.requests.Request:
    """google-auth's transport on a session that keeps the certificate document for its max-age:
    `verify_token` fetches the certs on every call otherwise, a round trip per push. Google
    announces signing keys well ahead of using them, so a cached document knows every key."""
    return google.auth.transport.requests.Request(session=CacheControl(requests.Session()))


class PushTokenVerifier:
    """Checks a bearer token: Google's signature, issuer, audience, and the push account."""

    def __init__(self, account: str, audience: str, certs_url: str) -> None:
        self.account = account
        self.audience = audience
        self.certs_url = certs_url
        self._request = _caching_request()

    async def check(self, authorization: str | None) -> None:
        """Raise PushUnauthenticated or PushForbidden unless the header carries a good token."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise PushUnauthenticated("A bearer token is required.", code="PUSH_TOKEN_MISSING")
        # The certs fetch is a blocking HTTP call, and the signature check is CPU work.
        claims = await asyncio.to_thread(self._verified_claims, token.strip())
        self._check_claims(claims)

    def _verified_claims(self, token: str) -> Mapping[str, Any]:
        try:
            return self._decode(token)
        except ValueError as exc:
            raise _invalid(exc) from None

    def _decode(self, token: str) -> Mapping[str, Any]:
        try:
            claims: Mapping[str, Any] = id_token.verify_token(
                token,
                self._request,
                audience=None,  # checked below, to tell a wrong audience from a bad token
                certs_url=self.certs_url,
                clock_skew_in_seconds=_CLOCK_SKEW_SECONDS,
            )
        except google.auth.exceptions.TransportError:
            log.exception("could not fetch the token signing certificates")
            raise Unavailable(
                "Cannot check push tokens right now.", code="PUSH_AUTH_UNAVAILABLE"
            ) from None
        except Exception as exc:
            # Whatever a hostile token makes the parser raise, it is a token we refuse.
            raise ValueError(f"{type(exc).__name__}: {exc}") from None
        return claims

    def _check_claims(self, claims: Mapping[str, Any]) -> None:
        if claims.get("iss") not in GOOGLE_ISSUERS:
            raise PushUnauthenticated(
                "The token was not issued by Google.", code="PUSH_TOKEN_ISSUER"
            )
        audiences = claims.get("aud")
        if self.audience not in (audiences if isinstance(audiences, list) else [audiences]):
            raise PushUnauthenticated(
                "The token is meant for another audience.", code="PUSH_TOKEN_AUDIENCE"
            )
        if claims.get("email") != self.account or claims.get("email_verified") is not True:
            log.warning("push token of an unexpected account", extra={"email": claims.get("email")})
            raise PushForbidden("This account may not call the processor.")


def _invalid(exc: Exception) -> PushUnauthenticated:
    # The reason without what follows a colon, which may quote the token itself.
    log.info("push token refused", extra={"reason": str(exc).split(":")[1].strip()[:120]})
    return PushUnauthenticated("The token is not valid.", code="PUSH_TOKEN_INVALID")


def push_verifier(settings: Settings) -> PushTokenVerifier | None:
    """The verifier the settings ask for; None (with a warning when deployed) when off."""
    account, audience = settings.push_auth_service_account, settings.push_auth_audience
    if account and audience:
        return PushTokenVerifier(account, audience, settings.push_auth_certs_url)
    if not settings.pubsub_emulator_host:
        log.warning(
            "push authentication is off: set LONGRUN_PUSH_AUTH_SERVICE_ACCOUNT and "
            "LONGRUN_PUSH_AUTH_AUDIENCE so the processor checks each push's OIDC token"
        )
    return None


async def require_push_token(request: Request) -> None:
    """Route dependency: the caller must present the push account's OIDC token (when on)."""
    verifier: PushTokenVerifier | None = request.app.state.push_verifier
    if verifier is not None:
        await verifier.check(request.headers.get("authorization"))
