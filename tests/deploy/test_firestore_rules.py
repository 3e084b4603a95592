"""deploy/firestore.rules, enforced by the Firestore emulator against clients with ID tokens."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from jobs.cloud.identity import IdentityToolkit
from tests.support import unsigned_id_token

RULES = Path(__file__).parents[2] / "deploy" / "firestore.rules"


@pytest.fixture(scope="module")
def rules_loaded(emulator_hosts: dict[str, str]) -> str:
    """Load the project's rules into the emulator; the base URL of its documents API."""
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    host = emulator_hosts["firestore"]
    body = {"rules": {"files": [{"name": "firestore.rules", "content": RULES.read_text()}]}}
    httpx.put(
        f"http://{host}/emulator/v1/projects/{project}:securityRules", json=body, timeout=30
    ).raise_for_status()
    return f"http://{host}/v1/projects/{project}/databases/(default)/documents"


Headers = dict[str, str]


@pytest.fixture(params=["unsigned-token", "auth-emulator"])
def sign_in(request: pytest.FixtureRequest) -> Callable[[str], tuple[str, Headers]]:
    """Clients as Firebase users: (uid, headers). Tokens made by hand, and tokens the Auth
    emulator issued to real sign-ins, as the web page gets them."""

    def by_hand(name: str) -> tuple[str, Headers]:
        token = unsigned_id_token(name)
        return name, {"Authorization": f"Bearer {token}"}

    def from_the_auth_emulator(name: str) -> tuple[str, Headers]:
        toolkit = IdentityToolkit("emulator", os.environ["FIREBASE_AUTH_EMULATOR_HOST"])
        tokens = toolkit.user(f"{name}-rules@example.com", "longrun-password")
        return tokens.uid, {"Authorization": f"Bearer {tokens.id_token}"}

    return by_hand if request.param == "unsigned-token" else from_the_auth_emulator


@pytest.fixture
def alice(sign_in: Callable[[str], tuple[str, Headers]]) -> tuple[str, Headers]:
    return sign_in("alice")


@pytest.fixture
def alices_job(db: firestore.Client, alice: tuple[str, Headers]) -> str:
    uid, _ = alice
    db.collection("jobs").document("alicesJob").set({"owner": uid, "status": "running"})
    db.collection("jobs/alicesJob/runs").document("step-1").set({"lease_owner": "x"})
    db.collection("uploads").document("u1").set({"owner": uid})
    return "alicesJob"


def test_the_owner_can_read_their_job(
    rules_loaded: str, alices_job: str, alice: tuple[str, Headers]
) -> None:
    uid, headers = alice

    response = httpx.get(f"{rules_loaded}/jobs/{alices_job}", headers=headers)

    assert response.status_code == 200
    assert response.json()["fields"]["owner"]["stringValue"] == uid


@pytest.mark.parametrize("other", ["mallory", None])
def test_another_user_or_nobody_cannot_read_it(
    rules_loaded: str,
    alices_job: str,
    sign_in: Callable[[str], tuple[str, Headers]],
    other: str | None,
) -> None:
    headers = sign_in(other)[1] if other else {}

    response = httpx.get(f"{rules_loaded}/jobs/{alices_job}", headers=headers)

    assert response.status_code == 403


def test_no_client_can_write_even_the_owner(
    rules_loaded: str, alices_job: str, alice: tuple[str, Headers]
) -> None:
    uid, headers = alice
    fields = {"fields": {"owner": {"stringValue": uid}, "status": {"stringValue": "x"}}}

    create = httpx.post(f"{rules_loaded}/jobs?documentId=forged", json=fields, headers=headers)
    update = httpx.patch(f"{rules_loaded}/jobs/{alices_job}", json=fields, headers=headers)
    delete = httpx.delete(f"{rules_loaded}/jobs/{alices_job}", headers=headers)
    run = httpx.patch(f"{rules_loaded}/jobs/{alices_job}/runs/step-1", json=fields, headers=headers)

    assert [r.status_code for r in (create, update, delete, run)] == [403, 403, 403, 403]


def test_runs_and_other_collections_are_closed_to_clients(
    rules_loaded: str, alices_job: str, alice: tuple[str, Headers]
) -> None:
    _, headers = alice

    run = httpx.get(f"{rules_loaded}/jobs/{alices_job}/runs/step-1", headers=headers)
    upload = httpx.get(f"{rules_loaded}/uploads/u1", headers=headers)

    assert run.status_code == 403
    assert upload.status_code == 403


def _newest_jobs_of(owner: str | None) -> dict[str, object]:
    """The page's "Your jobs" query (web/src/longrun.js watchJobs), as a REST runQuery."""
    query: dict[str, object] = {
        "from": [{"collectionId": "jobs"}],
        "orderBy": [{"field": {"fieldPath": "created_at"}, "direction": "DESCENDING"}],
        "limit": 11,
    }
    if owner is not None:
        query["where"] = {
            "fieldFilter": {
                "field": {"fieldPath": "owner"},
                "op": "EQUAL",
                "value": {"stringValue": owner},
            }
        }
    return {"structuredQuery": query}


def test_the_owner_can_list_their_newest_jobs_and_nobody_else_can(
    rules_loaded: str,
    db: firestore.Client,
    alice: tuple[str, Headers],
    sign_in: Callable[[str], tuple[str, Headers]],
) -> None:
    uid, headers = alice
    _, mallorys = sign_in("mallory")
    for number in range(3):
        created = datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=number)
        db.collection("jobs").document(f"job{number}").set({"owner": uid, "created_at": created})

    mine = httpx.post(f"{rules_loaded}:runQuery", json=_newest_jobs_of(uid), headers=headers)
    theirs = httpx.post(f"{rules_loaded}:runQuery", json=_newest_jobs_of(uid), headers=mallorys)
    everyones = httpx.post(f"{rules_loaded}:runQuery", json=_newest_jobs_of(None), headers=headers)

    assert mine.status_code == 200
    names = [row["document"]["name"].rsplit("/", 1)[1] for row in mine.json() if "document" in row]
    assert names == ["job2", "job1", "job0"]
    assert theirs.status_code == 403
    assert everyones.status_code == 403
