"""Every /v1 route needs a Firebase ID token, and each user sees only their own jobs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import firebase_admin
import httpx
import pytest
from firebase_admin import auth
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from deploy.local.processes import free_port
from jobs.cloud.identity import IdentityToolkit
from jobs.cloud.storage import Storage
from tests.support import JobsWatcher, submit_diagnostic, unsigned_id_token

PROBLEM = "application/problem+json"


@pytest.fixture
def bob(stack: Stack) -> Iterator[httpx.Client]:
    with stack.api(user="bob") as client:
        yield client


def assert_refused(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code


def test_no_token_is_401_with_a_bearer_challenge(stack: Stack) -> None:
    for method, path in [
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/abc"),
        ("GET", "/v1/pipelines"),
        ("POST", "/v1/uploads"),
    ]:
        response = httpx.request(method, f"{stack.api_url}{path}", timeout=30)

        assert_refused(response, 401, "TOKEN_MISSING")
        assert response.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.parametrize(
    ("authorization", "code"),
    [
        ("Bearer not-a-token", "TOKEN_INVALID"),
        ("Bearer " + "x" * 5000, "TOKEN_INVALID"),
        ("Basic YWxpY2U6c2VjcmV0", "TOKEN_MISSING"),
        ("Bearer", "TOKEN_MISSING"),
    ],
)
def test_garbage_credentials_are_401(stack: Stack, authorization: str, code: str) -> None:
    response = httpx.get(
        f"{stack.api_url}/v1/jobs", headers={"Authorization": authorization}, timeout=30
    )

    assert_refused(response, 401, code)
    assert "Bearer" in response.headers["www-authenticate"]


def test_an_expired_token_is_401(stack: Stack) -> None:
    toolkit = IdentityToolkit("emulator", os.environ["FIREBASE_AUTH_EMULATOR_HOST"])
    uid = toolkit.user("expired@example.com", "longrun-password").uid
    past = int(time.time()) - 7200
    token = unsigned_id_token(uid, iat=past, auth_time=past, exp=past + 3600)

    response = httpx.get(
        f"{stack.api_url}/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    assert_refused(response, 401, "TOKEN_EXPIRED")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_a_token_for_another_project_is_401(stack: Stack) -> None:
    token = unsigned_id_token(
        "someone", aud="someone-elses-app", iss="https://securetoken.google.com/other"
    )

    response = httpx.get(
        f"{stack.api_url}/v1/jobs", headers={"Authorization": f"Bearer {token}"}, timeout=30
    )

    assert_refused(response, 401, "TOKEN_INVALID")


def test_two_users_each_see_only_their_own_job(
    stack: Stack,
    api: httpx.Client,
    bob: httpx.Client,
    jobs_watcher: JobsWatcher,
    db: firestore.Client,
) -> None:
    alices = submit_diagnostic(api, stages=1)
    bobs = submit_diagnostic(bob, stages=1)
    for job_id in (alices, bobs):
        jobs_watcher.wait_terminal(job_id)
    # An artifact on Alice's job, stored as the processor stores one.
    storage = Storage(stack.settings)
    artifact = storage.upload_bytes(b"for alice only", f"jobs/{alices}/notes.txt", "text/plain")
    db.collection(stack.settings.jobs_collection).document(alices).update(
        {"artifacts": {"notes.txt": artifact.model_dump()}}
    )

    assert api.get(f"/v1/jobs/{alices}").status_code == 200
    assert bob.get(f"/v1/jobs/{bobs}").status_code == 200
    assert [job["job_id"] for job in api.get("/v1/jobs").json()["jobs"]] == [alices]
    assert [job["job_id"] for job in bob.get("/v1/jobs").json()["jobs"]] == [bobs]
    assert api.get(f"/v1/jobs/{alices}/artifacts/notes.txt").content == b"for alice only"

    unknown = bob.get("/v1/jobs/noSuchJob0000000000")
    for response in [
        bob.get(f"/v1/jobs/{alices}"),
        bob.get(f"/v1/jobs/{alices}/events"),
        bob.get(f"/v1/jobs/{alices}/artifacts/notes.txt"),
        bob.get(f"/v1/jobs/{alices}/artifacts/notes.txt/link"),
        bob.post(f"/v1/jobs/{alices}/cancel"),
        bob.post(f"/v1/jobs/{alices}/retry"),
    ]:
        assert_refused(response, 404, "JOB_NOT_FOUND")
        # Exactly as an unknown id answers: nothing tells Bob the job exists.
        assert response.json().keys() == unknown.json().keys()
        assert response.json()["title"] == unknown.json()["title"]
    assert api.get(f"/v1/jobs/{alices}").json()["status"] == "succeeded"


def test_a_job_cannot_use_another_users_upload(api: httpx.Client, bob: httpx.Client) -> None:
    ticket = api.post(
        "/v1/uploads", json={"filename": "a.wav", "content_type": "audio/wav", "size_bytes": 10}
    ).json()

    response = bob.post(
        "/v1/jobs", json={"pipeline": "media-analysis", "input": {"source": ticket["upload_id"]}}
    )

    assert_refused(response, 422, "UPLOAD_NOT_FOUND")
    assert bob.get("/v1/jobs").json()["jobs"] == []


@pytest.fixture
def strict_stack(make_stack: Any) -> Stack:
    """No anonymous users, and no trust in a token beyond the request that shows it."""
    stack: Stack = make_stack(LONGRUN_ALLOW_ANONYMOUS_USERS="false", LONGRUN_AUTH_CACHE_SECONDS="0")
    return stack


def test_anonymous_users_are_refused_unless_allowed(stack: Stack, strict_stack: Stack) -> None:
    anonymous = IdentityToolkit("emulator", os.environ["FIREBASE_AUTH_EMULATOR_HOST"]).sign_up()
    headers = {"Authorization": f"Bearer {anonymous.id_token}"}

    refused = httpx.get(f"{strict_stack.api_url}/v1/jobs", headers=headers, timeout=30)
    allowed = httpx.get(f"{stack.api_url}/v1/jobs", headers=headers, timeout=30)
    signed_in = httpx.get(
        f"{strict_stack.api_url}/v1/jobs", headers=strict_stack.auth_headers(), timeout=30
    )

    assert_refused(refused, 403, "ANONYMOUS_NOT_ALLOWED")
    assert allowed.status_code == 200
    assert signed_in.status_code == 200


def test_revoked_tokens_and_disabled_users_are_refused(strict_stack: Stack) -> None:
    toolkit = IdentityToolkit("emulator", os.environ["FIREBASE_AUTH_EMULATOR_HOST"])
    revoked = toolkit.user("revoked@example.com", "longrun-password")
    disabled = toolkit.user("disabled@example.com", "longrun-password")
    url = f"{strict_stack.api_url}/v1/jobs"
    assert httpx.get(url, headers=bearer(revoked.id_token), timeout=30).status_code == 200
    # Revocation is recorded in whole seconds after the token's issue time.
    time.sleep(1.1)

    auth.revoke_refresh_tokens(revoked.uid, app=admin_app())
    auth.update_user(disabled.uid, disabled=True, app=admin_app())

    assert_refused(
        httpx.get(url, headers=bearer(revoked.id_token), timeout=30), 401, "TOKEN_REVOKED"
    )
    assert_refused(
        httpx.get(url, headers=bearer(disabled.id_token), timeout=30), 401, "USER_DISABLED"
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def admin_app() -> firebase_admin.App:
    """The Admin SDK as an operator uses it (on the Auth emulator, as FIREBASE_AUTH_EMULATOR_HOST
    says)."""
    try:
        return firebase_admin.get_app("tests")
    except ValueError:
        return firebase_admin.initialize_app(
            options={"projectId": os.environ["GOOGLE_CLOUD_PROJECT"]}, name="tests"
        )


def test_the_service_refuses_to_start_on_the_auth_emulator_unless_local() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LONGRUN_")}
    env["FIREBASE_AUTH_EMULATOR_HOST"] = "127.0.0.1:9099"
    started = subprocess.run(
        [sys.executable, "-c", "from service.app import create_app; create_app()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert started.returncode != 0
    assert "refusing to start" in started.stderr
    assert "LONGRUN_LOCAL" in started.stderr


def test_when_firebase_auth_cannot_be_reached_the_answer_is_503_not_500(
    stack: Stack, make_stack: Any
) -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    cut_off: Stack = make_stack(FIREBASE_AUTH_EMULATOR_HOST=unreachable)

    response = httpx.get(
        f"{cut_off.api_url}/v1/jobs", headers=stack.auth_headers("carol"), timeout=60
    )

    assert_refused(response, 503, "AUTH_UNAVAILABLE")
