"""Uploads: limits checked before a URL is issued, then the bytes go straight to Storage."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from deploy.local.ephemeral import Stack
from jobs.cloud.storage import Storage

PROBLEM = "application/problem+json"


def test_an_upload_ticket_takes_the_file_straight_to_storage(
    stack: Stack, api: httpx.Client
) -> None:
    data = b"\x00\x00\x00\x20ftypisom" + bytes(1000)

    response = api.post(
        "/v1/uploads",
        json={"filename": "my stream.mp4", "content_type": "video/mp4", "size_bytes": len(data)},
    )
    ticket = response.json()
    put = httpx.put(ticket["upload_url"], content=data, headers=ticket["headers"])

    assert response.status_code == 201
    assert put.status_code == 200
    storage = Storage(stack.settings)
    stored = storage.stat(storage.uri(f"uploads/{ticket['upload_id']}/my_stream.mp4"))
    assert stored is not None
    assert stored.size_bytes == len(data)
    assert stored.content_type == "video/mp4"


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (
            {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 50 * 1024**3 + 1},
            "UPLOAD_TOO_LARGE",
            "size_bytes",
        ),
        (
            {"filename": "a.pdf", "content_type": "application/pdf", "size_bytes": 10},
            "VALIDATION_FAILED",
            "content_type",
        ),
        (
            {"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 0},
            "VALIDATION_FAILED",
            "size_bytes",
        ),
        ({"content_type": "video/mp4", "size_bytes": 10}, "VALIDATION_FAILED", "filename"),
        (
            {"filename": "a", "content_type": "video/mp4", "size_bytes": 1, "acl": "public"},
            "VALIDATION_FAILED",
            "acl",
        ),
    ],
)
def test_uploads_outside_the_limits_are_refused_before_any_url(
    api: httpx.Client, body: dict[str, Any], code: str, field: str
) -> None:
    response = api.post("/v1/uploads", json=body)

    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["code"] == code
    assert field in [error["field"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    "source",
    [
        "https://127.0.0.1/vod.mp4",
        "https://10.0.0.1/vod.mp4",
        "https://169.254.169.254/computeMetadata/v1/",
        "file:///etc/passwd",
        "http://example.com/vod.mp4",
    ],
)
def test_media_sources_off_limits_are_refused_at_submit(api: httpx.Client, source: str) -> None:
    response = api.post(
        "/v1/jobs", json={"pipeline": "media-analysis", "input": {"source": source}}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "SOURCE_NOT_ALLOWED"
    assert response.json()["errors"][0]["field"] == "input.source"


def test_a_job_naming_an_upload_that_does_not_exist_is_refused(api: httpx.Client) -> None:
    response = api.post(
        "/v1/jobs", json={"pipeline": "media-analysis", "input": {"source": "NoSuchUpload123"}}
    )

    assert response.status_code == 422
    assert response.json()["code"] == "UPLOAD_NOT_FOUND"
