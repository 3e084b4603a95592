"""Expiry: every document longrun writes carries `expire_at`, and what has expired is gone for
clients at once, before Firestore's TTL deletion (which may lag a day or more) removes it."""

from __future__ import annotations

from datetime import timedelta

import httpx
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus, utcnow
from tests.support import JobsWatcher, run_document, submit_diagnostic


def expire_now(db: firestore.Client, collection: str, document_id: str) -> None:
    """What the passing of time does: the document's `expire_at` is behind us."""
    db.collection(collection).document(document_id).update(
        {"expire_at": utcnow() - timedelta(seconds=1)}
    )


def upload(api: httpx.Client) -> str:
    body = {"filename": "stream.mp4", "content_type": "video/mp4", "size_bytes": 1000}
    response = api.post("/v1/uploads", json=body)
    assert response.status_code == 201, response.text
    upload_id: str = response.json()["upload_id"]
    return upload_id


def test_a_finished_jobs_run_documents_expire_with_it(
    api: httpx.Client, stack: Stack, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    job_id = submit_diagnostic(api, stages=2)

    job = jobs_watcher.wait_terminal(job_id)
    runs = [run_document(db, stack, job_id, stage.name) for stage in job.stages]

    assert job.status == JobStatus.SUCCEEDED
    assert job.expire_at - job.created_at == timedelta(days=stack.settings.job_ttl_days)
    assert [run["expire_at"] for run in runs] == [job.expire_at, job.expire_at]


def test_a_failed_jobs_run_documents_expire_with_it(
    api: httpx.Client, stack: Stack, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    job_id = submit_diagnostic(api, stages=1, fail_stage=1)

    job = jobs_watcher.wait_terminal(job_id)

    assert job.status == JobStatus.FAILED
    assert run_document(db, stack, job_id, "step-1")["expire_at"] == job.expire_at


def test_an_upload_record_expires_like_a_job(
    api: httpx.Client, stack: Stack, db: firestore.Client
) -> None:
    upload_id = upload(api)

    record = db.collection(stack.settings.uploads_collection).document(upload_id).get()

    ttl = record.get("expire_at") - record.get("created_at")
    assert ttl == timedelta(days=stack.settings.job_ttl_days)


def test_a_job_past_its_expire_at_is_gone_everywhere_before_firestore_deletes_it(
    api: httpx.Client, stack: Stack, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    expiring = submit_diagnostic(api, stages=1, fail_stage=1)
    staying = submit_diagnostic(api, stages=1)
    jobs_watcher.wait_terminal(expiring)
    jobs_watcher.wait_terminal(staying)
    expire_now(db, stack.settings.jobs_collection, expiring)

    answers = {
        "get": api.get(f"/v1/jobs/{expiring}"),
        "events": api.get(f"/v1/jobs/{expiring}/events"),
        "artifact": api.get(f"/v1/jobs/{expiring}/artifacts/report.json"),
        "cancel": api.post(f"/v1/jobs/{expiring}/cancel"),
        "retry": api.post(f"/v1/jobs/{expiring}/retry"),
    }
    listed = [job["job_id"] for job in api.get("/v1/jobs").json()["jobs"]]
    still_stored = db.collection(stack.settings.jobs_collection).document(expiring).get().exists

    for what, response in answers.items():
        assert response.status_code == 404, what
        assert response.headers["content-type"] == "application/problem+json", what
        assert response.json()["code"] == "JOB_NOT_FOUND", what
    assert listed == [staying]
    assert still_stored


def test_an_expired_upload_can_no_longer_be_a_source(
    api: httpx.Client, stack: Stack, db: firestore.Client
) -> None:
    fresh, expired = upload(api), upload(api)
    expire_now(db, stack.settings.uploads_collection, expired)

    refused = api.post(
        "/v1/jobs", json={"pipeline": "media-analysis", "input": {"source": expired}}
    )
    accepted = api.post("/v1/jobs", json={"pipeline": "media-analysis", "input": {"source": fresh}})

    assert refused.status_code == 422
    assert refused.json()["code"] == "UPLOAD_NOT_FOUND"
    assert accepted.status_code == 202
