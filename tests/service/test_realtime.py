"""Following a job without a Firestore SDK: cheap polling with ETags, listing, and SSE."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from deploy.local.ephemeral import Stack
from tests.support import JobsWatcher, submit_diagnostic


def sse_events(response: httpx.Response) -> Iterator[dict[str, Any]]:
    """The events of a text/event-stream response, as {event, id, data} dicts."""
    event: dict[str, Any] = {}
    for line in response.iter_lines():
        if not line:
            if "data" in event:
                yield event
            event = {}
        elif line.startswith(":"):
            continue
        else:
            field, _, value = line.partition(":")
            event[field] = value.removeprefix(" ")


def test_polling_with_the_etag_costs_no_body_until_something_changes(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=2, work_units=20, unit_seconds=0.05)
    first = api.get(f"/v1/jobs/{job_id}")

    unchanged = api.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": first.headers["etag"]})
    jobs_watcher.wait_terminal(job_id)
    changed = api.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": first.headers["etag"]})

    assert first.headers["etag"] == f'"{first.json()["version"]}"'
    assert first.headers["retry-after"] == "2"
    assert unchanged.status_code in (200, 304)
    if unchanged.status_code == 304:
        assert unchanged.content == b""
    assert changed.status_code == 200
    assert changed.json()["status"] == "succeeded"
    assert "retry-after" not in changed.headers
    again = api.get(f"/v1/jobs/{job_id}", headers={"If-None-Match": changed.headers["etag"]})
    assert again.status_code == 304
    assert again.content == b""


def test_the_job_list_is_newest_first_with_cursor_pages(
    api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    ids = [submit_diagnostic(api, stages=1, work_units=0) for _ in range(5)]
    for job_id in ids:
        jobs_watcher.wait_terminal(job_id)

    first = api.get("/v1/jobs", params={"limit": 2}).json()
    second = api.get("/v1/jobs", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    third = api.get("/v1/jobs", params={"limit": 2, "cursor": second["next_cursor"]}).json()
    succeeded = api.get("/v1/jobs", params={"status": "succeeded"}).json()
    failed = api.get("/v1/jobs", params={"status": "failed"}).json()

    listed = [job["job_id"] for page in (first, second, third) for job in page["jobs"]]
    assert listed == list(reversed(ids))
    assert third["next_cursor"] is None
    assert len(succeeded["jobs"]) == 5
    assert failed["jobs"] == []


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"status": "sleeping"}, {"cursor": "!!!"}, {"cursor": "eA"}],
)
def test_bad_list_parameters_are_422(api: httpx.Client, params: dict[str, Any]) -> None:
    response = api.get("/v1/jobs", params=params)

    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"


def test_sse_streams_every_stage_transition_in_order_and_ends_at_the_end(
    stack: Stack, api: httpx.Client
) -> None:
    job_id = submit_diagnostic(api, stages=3, work_units=6, unit_seconds=0.1)

    with api.stream("GET", f"/v1/jobs/{job_id}/events", timeout=60) as stream:
        events = list(sse_events(stream))

    jobs = [json.loads(event["data"]) for event in events]
    assert stream.headers["content-type"].startswith("text/event-stream")
    assert all(event["event"] == "job" for event in events)
    assert [int(event["id"]) for event in events] == [job["version"] for job in jobs]
    versions = [job["version"] for job in jobs]
    assert versions == sorted(set(versions))
    running = [job["stage"] for job in jobs if job["status"] == "running"]
    assert [s for i, s in enumerate(running) if i == 0 or running[i - 1] != s] == [
        "step-1",
        "step-2",
        "step-3",
    ]
    assert jobs[-1]["status"] == "succeeded"


def test_sse_reconnect_with_last_event_id_sends_the_current_state_at_once(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher
) -> None:
    job_id = submit_diagnostic(api, stages=1)
    final = jobs_watcher.wait_terminal(job_id)

    with api.stream(
        "GET", f"/v1/jobs/{job_id}/events", headers={"Last-Event-ID": "1"}, timeout=30
    ) as stream:
        events = list(sse_events(stream))

    assert len(events) == 1
    assert int(events[0]["id"]) == final.version
    assert json.loads(events[0]["data"])["status"] == "succeeded"


def test_sse_for_an_unknown_job_is_404(api: httpx.Client) -> None:
    response = api.get("/v1/jobs/noSuchJob/events", timeout=10)

    assert response.status_code == 404
    assert response.json()["code"] == "JOB_NOT_FOUND"
