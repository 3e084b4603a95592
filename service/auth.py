"""Who is calling: every `/v1` route needs a Firebase ID token, verified with firebase-admin.

The token's `uid` becomes the job's `owner`; every route compares it (see `service/routes`), so
another user's job looks exactly like one that does not exist.

Verification checks the signature against Google's published keys, the project (`aud`, `iss`),
expiry, and revocation (`check_revoked=True`, one Identity Toolkit lookup). A verified token is
then trusted for `auth_cache_seconds` (never past its own expiry), so a client polling every
second does not cost a lookup per request: a revoked or disabled user is refused within that
time. With FIREBASE_AUTH_EMULATOR_HOST set, firebase-admin accepts the Auth emulator's unsigned
tokens, so that is allowed only on a stack configured as local (`check_auth_configuration`).
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import Annotated, Any

import firebase_admin
from cachetools import TLRUCache
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from firebase_admin import auth
from firebase_admin.exceptions import FirebaseError

from jobs.contract.errors import Forbidden, Unauthenticated, Unavailable
from jobs.contract.settings import Settings

log = logging.getLogger(__name__)

_CHALLENGE = 'Bearer realm="longrun"'
_bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="Firebase ID token",
    description="A Firebase ID token of the calling user (Firebase Auth, `getIdToken()`).",
)


class AuthConfigurationError(RuntimeError):
    """The service must not start with these settings."""


def check_auth_configuration(settings: Settings) -> None:
    """Refuse to start where the Auth emulator would let unsigned tokens in."""
    if settings.firebase_auth_emulator_host and not settings.local:
        raise AuthConfigurationError(
            "FIREBASE_AUTH_EMULATOR_HOST is set, so ID tokens would not be verified at all: "
            "refusing to start. Unset it, or set LONGRUN_LOCAL=true on a local stack only."
        )
    if settings.local and os.environ.get("K_SERVICE"):
        raise AuthConfigurationError(
            "LONGRUN_LOCAL=true on Cloud Run: refusing to start. It is for the local stack only."
        )


class Authenticator:
    """Verifies ID tokens for one Firebase project, with a short cache of verified tokens."""

    def __init__(self, settings: Settings) -> None:
        self._allow_anonymous = settings.allow_anonymous_users
        self._cache_seconds = settings.auth_cache_seconds
        self._app = firebase_admin.initialize_app(
            options={"projectId": settings.project_id}, name=f"longrun-{id(self)}"
        )
        # Verified claims by token, kept until the earlier of the cache time and the expiry.
        self._verified: TLRUCache[str, dict[str, Any]] = TLRUCache(
            maxsize=10_000,
            ttu=lambda _token, claims, now: min(now + self._cache_seconds, claims["exp"]),
            timer=time.time,
        )

    def close(self) -> None:
        firebase_admin.delete_app(self._app)

    async def user(self, token: str) -> str:
        """The uid the token proves, or an Unauthenticated/Forbidden error."""
        claims = self._verified.get(token)
        if claims is None:
            claims = await asyncio.to_thread(self._verify, token)
            if self._cache_seconds > 0:
                self._verified[token] = claims
        if claims.get("firebase", {}).get("sign_in_provider") == "anonymous" and not (
            self._allow_anonymous
        ):
            raise Forbidden(
                "Anonymous users may not use this API; sign in with an account.",
                code="ANONYMOUS_NOT_ALLOWED",
            )
        return str(claims["uid"])

    def _verify(self, token: str) -> dict[str, Any]:
        try:
            # firebase-admin checks expiry with the signature, and skips both for the Auth
            # emulator's unsigned tokens: expiry is checked here too, before revocation, so the
            # local stack refuses what Cloud Run would, for the same reason.
            claims = dict(auth.verify_id_token(token, app=self._app))
            if not isinstance(claims.get("exp"), int) or claims["exp"] <= time.time():
                raise auth.ExpiredIdTokenError("Token expired", cause=None)
            auth.verify_id_token(token, app=self._app, check_revoked=True)
        except auth.ExpiredIdTokenError:
            raise _refused("The ID token has expired; get a fresh one.", "TOKEN_EXPIRED") from None
        except auth.RevokedIdTokenError:
            raise _refused("The ID token was revoked; sign in again.", "TOKEN_REVOKED") from None
        except auth.UserDisabledError:
            raise _refused("This user account is disabled.", "USER_DISABLED") from None
        except auth.UserNotFoundError:
            raise _refused("The token's user does not exist.", "TOKEN_INVALID") from None
        except auth.CertificateFetchError:
            log.warning("fetching Google's token signing keys failed", exc_info=True)
            raise Unavailable(
                "Tokens cannot be verified right now; try again shortly.", code="AUTH_UNAVAILABLE"
            ) from None
        except (auth.InvalidIdTokenError, ValueError):
            raise _refused("The ID token is not valid for this service.", "TOKEN_INVALID") from None
        except FirebaseError:
            # The revocation lookup failed (permissions, quota, an outage): not the caller's fault.
            log.warning("checking an ID token with Firebase Auth failed", exc_info=True)
            raise Unavailable(
                "Tokens cannot be verified right now; try again shortly.", code="AUTH_UNAVAILABLE"
            ) from None
        return _well_formed(claims)


def _well_formed(claims: dict[str, Any]) -> dict[str, Any]:
    """Claims shaped as Firebase issues them: the Auth emulator accepts hand-made tokens."""
    uid, firebase = claims.get("uid"), claims.get("firebase", {})
    if not isinstance(uid, str) or not uid or not isinstance(firebase, dict):
        raise _refused("The ID token is not valid for this service.", "TOKEN_INVALID")
    return claims


def _refused(message: str, code: str) -> Unauthenticated:
    return Unauthenticated(
        message,
        code=code,
        headers={"WWW-Authenticate": f'{_CHALLENGE}, error="invalid_token"'},
    )


def _authenticator(request: Request) -> Authenticator:
    authenticator: Authenticator = request.app.state.longrun.authenticator
    return authenticator


async def _current_user(
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    authenticator: Annotated[Authenticator, Depends(_authenticator)],
) -> str:
    if credentials is None or not credentials.credentials:
        raise Unauthenticated(
            "Send a Firebase ID token: `Authorization: Bearer <token>`.",
            code="TOKEN_MISSING",
            headers={"WWW-Authenticate": _CHALLENGE},
        )
    return await authenticator.user(credentials.credentials)


UserDep = Annotated[str, Depends(_current_user)]
