"""deploy/firestore.rules, enforced by the Firestore emulator against clients with ID tokens."""

from __future__ import annotations

import base64
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

RULES = Path(__file__).parents[2] / "deploy" / "firestore.rules"


def id_token(uid: str, project: str) -> str:
    """An unsigned Firebase ID token, which the emulator accepts as a client's."""
    now = int(time.time())
    claims = {
        "sub": uid,
        "user_id": uid,
        "aud": project,
        "iss": f"https://securetoken.google.com/{project}",
        "iat": now,
        "auth_time": now,
        "exp": now + 3600,
    }

    def part(value: dict[str, object]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


@pytest.fixture(scope="module")
def rules_loaded(emulator_hosts: dict[str, str]) -> str:
    """Load the project's rules into the emulator; the base URL of its documents API."""
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    host = emulator_hosts["firestore"]
    body = {"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}}
    httpx.put(
        f"http://{host}/emulator/v1/projects/{project}:securityRules", json=body
    ).raise_for_status()
    return f"http://{host}/v1/projects/{project}/databases/(default)/documents"


@pytest.fixture
def alices_job(db: firestore.Client) -> str:
    db.collection("jobs").document("alicesJob").set({"owner": "alice", "status": "running"})
    db.collection("jobs/alicesJob/runs").document("step-1").set({"lease_owner": "x"})
    db.collection("uploads").document("u1").set({"owner": "alice"})
    return "alicesJob"


def as_user(uid: str | None) -> dict[str, str]:
    if uid is None:
        return {}
    return {"Authorization": f"Bearer {id_token(uid, os.environ['GOOGLE_CLOUD_PROJECT'])}"}


def test_the_owner_can_read_their_job(rules_loaded: str, alices_job: str) -> None:
    response = httpx.get(f"{rules_loaded}/jobs/{alices_job}", headers=as_user("alice"))

    assert response.status_code == 200
    assert response.json()["fields"]["owner"]["stringValue"] == "alice"


@pytest.mark.parametrize("uid", ["mallory", None])
def test_another_user_or_nobody_cannot_read_it(
    rules_loaded: str, alices_job: str, uid: str | None
) -> None:
    response = httpx.get(f"{rules_loaded}/jobs/{alices_job}", headers=as_user(uid))

    assert response.status_code == 403


def test_no_client_can_write_even_the_owner(rules_loaded: str, alices_job: str) -> None:
    headers = as_user("alice")
    fields = {"fields": {"owner": {"stringValue": "alice"}, "status": {"stringValue": "x"}}}

    create = httpx.post(f"{rules_loaded}/jobs?documentId=forged", json=fields, headers=headers)
    update = httpx.patch(f"{rules_loaded}/jobs/{alices_job}", json=fields, headers=headers)
    delete = httpx.delete(f"{rules_loaded}/jobs/{alices_job}", headers=headers)
    run = httpx.patch(f"{rules_loaded}/jobs/{alices_job}/runs/step-1", json=fields, headers=headers)

    assert [r.status_code for r in (create, update, delete, run)] == [403, 403, 403, 403]


def test_runs_and_other_collections_are_closed_to_clients(
    rules_loaded: str, alices_job: str
) -> None:
    headers = as_user("alice")

    run = httpx.get(f"{rules_loaded}/jobs/{alices_job}/runs/step-1", headers=headers)
    upload = httpx.get(f"{rules_loaded}/uploads/u1", headers=headers)

    assert run.status_code == 403
    assert upload.status_code == 403
