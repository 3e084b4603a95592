"""At-least-once delivery, exactly-once stage results: duplicates never run a stage twice."""

from __future__ import annotations

import httpx
from google.cloud import firestore

from jobs.contract.models import JobStatus
from tests.support import (
    JobsWatcher,
    Stack,
    body_completions,
    processor_log_lines,
    publish_by_hand,
    wait_for_claim,
)


def test_duplicate_stage_messages_never_run_a_stage_twice(
    stack: Stack, api: httpx.Client, jobs_watcher: JobsWatcher, db: firestore.Client
) -> None:
    job_id = api.post(
        "/v1/jobs",
        json={
            "pipeline": "diagnostic",
            "input": {"stages": 2, "work_units": 10, "unit_seconds": 0.05},
        },
    ).json()["job_id"]
    while_running = [publish_by_hand(stack, job_id, "step-1") for _ in range(2)]

    final = jobs_watcher.wait_terminal(job_id)
    after_end = [publish_by_hand(stack, job_id, stage) for stage in ("step-1", "step-2")]
    decisions = [wait_for_claim(stack, message_id) for message_id in while_running + after_end]

    assert final.status == JobStatus.SUCCEEDED
    assert decisions[-2:] == ["terminal", "terminal"]
    claims = [
        line["stage"]
        for line in processor_log_lines(stack)
        if line.get("job_id") == job_id and line["message"] == "claim claimed"
    ]
    assert sorted(claims) == ["step-1", "step-2"], "each stage was claimed exactly once"
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1}
    runs = db.collection(stack.settings.jobs_collection).document(job_id).collection("runs")
    assert [runs.document(s).get().get("attempts") for s in ("step-1", "step-2")] == [1, 1]
    assert [stage.attempts for stage in final.stages] == [1, 1]
    latest = api.get(f"/v1/jobs/{job_id}").json()
    assert latest["version"] == final.version, "duplicates after the end wrote nothing"
