"""With push authentication on, the processor runs work only for the push account's OIDC token.

The tests are Google here: they make an RSA key, publish its certificate the way Google's
`oauth2/v1/certs` does (key id -> x509 PEM) from a local server, point the processor at it, and
sign their own tokens.
"""

from __future__ import annotations

import base64
import datetime
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from google.auth import crypt, jwt
from pydantic import ValidationError

from deploy.local.ephemeral import Stack, start_stack
from jobs.contract.settings import Settings
from processor.oidc import push_verifier

ACCOUNT = "longrun-push@my-project.iam.gserviceaccount.com"
AUDIENCE = "https://longrun-processor-abc-uc.a.run.app"
PROBLEM = "application/problem+json"


@dataclass
class SigningKey:
    key_id: str
    key: rsa.RSAPrivateKey

    @classmethod
    def generate(cls, key_id: str) -> SigningKey:
        return cls(key_id, rsa.generate_private_key(public_exponent=65537, key_size=2048))

    def certificate_pem(self) -> str:
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, self.key_id)])
        now = datetime.datetime.now(datetime.UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(self.key, hashes.SHA256())
        )
        return certificate.public_bytes(serialization.Encoding.PEM).decode()

    def sign(self, key_id: str | None = None, **overrides: Any) -> str:
        """A token like the one Pub/Sub push sends, with some claims changed or removed."""
        now = int(time.time())
        claims = {
            "iss": "https://accounts.google.com",
            "aud": AUDIENCE,
            "email": ACCOUNT,
            "email_verified": True,
            "sub": "1234567890",
            "iat": now,
            "exp": now + 3600,
            **overrides,
        }
        pem = self.key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        signer = crypt.RSASigner.from_string(pem, key_id=key_id or self.key_id)
        token: bytes = jwt.encode(signer, {k: v for k, v in claims.items() if v is not None})
        return token.decode()


@dataclass
class CertsServer:
    url: str
    fetches: list[str]


@pytest.fixture(scope="module")
def google_key() -> SigningKey:
    return SigningKey.generate("google-key-1")


@pytest.fixture(scope="module")
def certs(google_key: SigningKey) -> Iterator[CertsServer]:
    """Google's certs endpoint, as far as the processor can tell."""
    body = json.dumps({google_key.key_id: google_key.certificate_pem()}).encode()
    fetches: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            fetches.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Cache-Control", "public, max-age=3600")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield CertsServer(f"http://127.0.0.1:{server.server_port}/oauth2/v1/certs", fetches)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def guarded(log_dir: Path, certs: CertsServer) -> Iterator[Stack]:
    """A stack whose processor checks push tokens."""
    stack = start_stack(
        log_dir / "push-auth",
        LONGRUN_PUSH_AUTH_SERVICE_ACCOUNT=ACCOUNT,
        LONGRUN_PUSH_AUTH_AUDIENCE=AUDIENCE,
        LONGRUN_PUSH_AUTH_CERTS_URL=certs.url,
    )
    yield stack
    stack.stop()


def envelope(job_id: str = "noSuchJob") -> dict[str, Any]:
    data = json.dumps({"job_id": job_id, "stage": "step-1"}).encode()
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "attributes": {},
            "messageId": "42",
            "publishTime": "2026-01-01T00:00:00Z",
        },
        "subscription": "projects/p/subscriptions/s",
    }


def push(stack: Stack, token: str | None, path: str = "/pubsub/push") -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token is not None else {}
    return httpx.post(f"{stack.processor_url}{path}", json=envelope(), headers=headers, timeout=30)


def test_a_push_with_the_push_accounts_token_is_accepted(
    guarded: Stack, google_key: SigningKey
) -> None:
    response = push(guarded, google_key.sign())

    assert response.status_code == 204  # acked: the job does not exist, nothing to run


@pytest.mark.parametrize("path", ["/pubsub/push", "/pubsub/dead-letter", "/tasks/sweep"])
def test_every_post_route_refuses_a_request_without_a_token(guarded: Stack, path: str) -> None:
    response = push(guarded, None, path)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "PUSH_TOKEN_MISSING"


def test_the_dead_letter_and_sweep_routes_accept_the_push_accounts_token(
    guarded: Stack, google_key: SigningKey
) -> None:
    dead_letter = push(guarded, google_key.sign(), "/pubsub/dead-letter")
    sweep = push(guarded, google_key.sign(), "/tasks/sweep")

    assert dead_letter.status_code == 204
    assert sweep.status_code == 200
    assert "republished" in sweep.json()


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("garbage", "PUSH_TOKEN_INVALID"),
        ("unknown key", "PUSH_TOKEN_INVALID"),
        ("forged with a known key id", "PUSH_TOKEN_INVALID"),
        ("expired", "PUSH_TOKEN_INVALID"),
        ("another issuer", "PUSH_TOKEN_ISSUER"),
        ("another audience", "PUSH_TOKEN_AUDIENCE"),
        ("no audience", "PUSH_TOKEN_AUDIENCE"),
    ],
)
def test_a_token_that_does_not_authenticate_the_caller_is_refused_with_401(
    guarded: Stack, google_key: SigningKey, case: str, code: str
) -> None:
    stranger = SigningKey.generate("stranger-key")
    long_ago = int(time.time()) - 7200
    token = {
        "garbage": "not.a.token",
        "unknown key": stranger.sign(),
        "forged with a known key id": stranger.sign(key_id=google_key.key_id),
        "expired": google_key.sign(iat=long_ago, exp=long_ago + 3600),
        "another issuer": google_key.sign(iss="https://evil.example.com"),
        "another audience": google_key.sign(aud="https://someone-else.a.run.app"),
        "no audience": google_key.sign(aud=None),
    }[case]

    response = push(guarded, token)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


@pytest.mark.parametrize(
    "claims",
    [
        {"email": "someone-else@my-project.iam.gserviceaccount.com"},
        {"email": None},
        {"email_verified": False},
    ],
)
def test_a_valid_token_of_another_account_is_refused_with_403(
    guarded: Stack, google_key: SigningKey, claims: dict[str, Any]
) -> None:
    response = push(guarded, google_key.sign(**claims))

    assert response.status_code == 403
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == "PUSH_FORBIDDEN"


def test_the_certificates_are_fetched_once_not_per_push(
    guarded: Stack, google_key: SigningKey, certs: CertsServer
) -> None:
    push(guarded, google_key.sign())  # warm: the module's first fetch may happen here
    before = len(certs.fetches)

    statuses = [push(guarded, google_key.sign()).status_code for _ in range(5)]

    assert statuses == [204] * 5
    assert len(certs.fetches) == before


def test_without_an_account_set_pushes_need_no_token(stack: Stack) -> None:
    response = push(stack, None)

    assert response.status_code == 204


def test_push_auth_off_outside_the_emulators_is_warned_about_at_start(
    caplog: pytest.LogCaptureFixture,
) -> None:
    deployed = Settings.model_validate({"PUBSUB_EMULATOR_HOST": None})
    local = Settings.model_validate({"PUBSUB_EMULATOR_HOST": "127.0.0.1:8085"})

    with caplog.at_level("WARNING", logger="processor.oidc"):
        assert push_verifier(local) is None
        assert caplog.records == []
        assert push_verifier(deployed) is None

    (record,) = caplog.records
    assert "push authentication is off" in record.getMessage()


def test_an_account_without_an_audience_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="LONGRUN_PUSH_AUTH_AUDIENCE"):
        Settings(push_auth_service_account=ACCOUNT)
