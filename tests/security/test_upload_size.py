"""An upload is pinned to its declared size: in what the session start tells Cloud Storage, and
again by the `fetch` stage, which is all that stands on the emulator (it stores what it is sent).
The size may be VOD-sized (50 GiB by default, LONGRUN_MAX_SOURCE_BYTES), and no more.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest
import requests

from deploy.local.ephemeral import Stack
from jobs.cloud.storage import Storage
from tests.support import JobsWatcher

VIDEO = b"\x00\x00\x00\x20ftypisom"


def test_the_upload_session_is_opened_for_exactly_the_declared_size(stack: Stack) -> None:
    storage = Storage(stack.settings)
    sent: list[requests.PreparedRequest] = []

    def record(response: requests.Response, *_: Any, **__: Any) -> None:
        sent.append(response.request)

    storage._client._http.hooks["response"].append(record)

    url = storage.upload_session("uploads/pinned/a.mp4", "video/mp4", 1234, origin=None)

    starts = [r for r in sent if r.method == "POST" and "uploadType=resumable" in (r.url or "")]
    assert url
    assert len(starts) == 1
    assert starts[0].headers["x-upload-content-length"] == "1234"
    assert starts[0].headers["x-upload-content-type"] == "video/mp4"


def test_a_body_larger_than_declared_is_refused_by_the_fetch_stage(
    make_stack: Callable[..., Stack], db: Any
) -> None:
    stack = make_stack(LONGRUN_MAX_SOURCE_BYTES="4096")
    watcher = JobsWatcher.start(db, stack.settings)
    body = VIDEO + bytes(8192)
    with stack.api() as api:
        ticket = api.post(
            "/v1/uploads",
            json={"filename": "small.mp4", "content_type": "video/mp4", "size_bytes": 1000},
        ).json()
        put = requests.put(ticket["upload_url"], data=body, headers=ticket["headers"], timeout=30)
        submitted = api.post(
            "/v1/jobs",
            json={"pipeline": "media-analysis", "input": {"source": ticket["upload_id"]}},
        )
    final = watcher.wait_terminal(submitted.json()["job_id"])
    watcher.stop()

    assert put.status_code == 200, "the emulator takes the larger body: only the fetch can tell"
    assert submitted.status_code == 202
    assert final.status == "failed"
    assert final.error is not None
    assert final.error.code == "SOURCE_TOO_LARGE"


GIB = 1024**3


@pytest.mark.parametrize(("size", "status"), [(50 * GIB, 201), (50 * GIB + 1, 422)])
def test_a_vod_sized_upload_is_accepted_and_one_byte_more_is_refused(
    api: httpx.Client, size: int, status: int
) -> None:
    response = api.post(
        "/v1/uploads",
        json={"filename": "vod.mp4", "content_type": "video/mp4", "size_bytes": size},
    )

    assert response.status_code == status
    if status == 422:
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "UPLOAD_TOO_LARGE"
    else:
        assert response.json()["max_bytes"] == size


def test_a_lower_limit_set_by_the_operator_is_enforced_at_upload(
    make_stack: Callable[..., Stack],
) -> None:
    stack = make_stack(LONGRUN_MAX_SOURCE_BYTES=str(10 * 1024**2))
    with stack.api() as api:
        refused = api.post(
            "/v1/uploads",
            json={"filename": "a.mp4", "content_type": "video/mp4", "size_bytes": 10 * 1024**2 + 1},
        )

    assert refused.status_code == 422
    assert refused.json()["code"] == "UPLOAD_TOO_LARGE"
    assert refused.json()["errors"][0]["field"] == "size_bytes"
