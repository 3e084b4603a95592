"""A store decides from what it last wrote without reading first, and never on a stale memory:
two stores on the real Firestore emulator stand for two processor instances."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import pytest
from google.cloud import firestore

from jobs.cloud.store import Decide, Decision, JobStore, RunNames
from jobs.contract.models import Job, JobStatus
from jobs.contract.runs import Run, RunStatus
from jobs.contract.settings import Settings
from tests.support import a_job


def new_store() -> JobStore:
    return JobStore(firestore.AsyncClient(project=os.environ["GOOGLE_CLOUD_PROJECT"]), Settings())


def a_running_job(job_id: str) -> Job:
    return a_job(job_id, status=JobStatus.RUNNING, stage="step-1")


def saying(message: str, seen: list[Job]) -> Decide[None]:
    def decide(job: Job | None, _runs: Mapping[str, Run]) -> Decision[None]:
        assert job is not None
        seen.append(job)
        return Decision(None, job=job.model_copy(update={"message": message}))

    return decide


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The job ids every store in the test read before deciding."""
    read: list[str] = []
    original = JobStore._read_for

    async def counted(self: JobStore, job_id: str, runs: RunNames) -> tuple[Any, dict[str, Any]]:
        read.append(job_id)
        return await original(self, job_id, runs)

    monkeypatch.setattr(JobStore, "_read_for", counted)
    return read


async def test_a_store_deciding_after_its_own_write_does_not_read_the_job_again(
    reads: list[str],
) -> None:
    store = new_store()
    await store.create(a_running_job("j1"))
    seen: list[Job] = []

    for message in ("one", "two", "three"):
        await store.decide("j1", saying(message, seen))

    assert reads == ["j1"], "only the first decision read the job"
    assert [job.message for job in seen[1:]] == ["one", "two"], "each saw the last write"
    stored = await store.get("j1")
    assert stored is not None
    assert stored.version == a_running_job("j1").version + 3, "one version a decision"
    assert stored.message == "three"


async def test_a_change_another_instance_made_is_seen_and_kept(reads: list[str]) -> None:
    mine, theirs = new_store(), new_store()
    await mine.create(a_running_job("j2"))
    await mine.decide("j2", saying("mine", []))
    await theirs.update("j2", {"cancel_requested": True})

    seen: list[Job] = []
    await mine.decide("j2", saying("mine again", seen))

    assert [job.cancel_requested for job in seen] == [False, True], "decided again on a read"
    stored = await theirs.get("j2")
    assert stored is not None
    assert stored.cancel_requested
    assert stored.message == "mine again"


async def test_a_decision_that_writes_nothing_is_made_on_what_is_stored() -> None:
    mine, theirs = new_store(), new_store()
    await mine.create(a_running_job("j3"))
    await mine.decide("j3", saying("running", []))
    await theirs.update("j3", {"cancel_requested": True})

    def cancelled(job: Job | None, _runs: Mapping[str, Run]) -> Decision[bool]:
        assert job is not None
        return Decision(job.cancel_requested)

    assert await mine.decide("j3", cancelled), "a remembered job would have said no"


async def test_a_run_another_instance_created_is_not_created_again() -> None:
    mine, theirs = new_store(), new_store()
    await mine.create(a_running_job("j4"))
    await mine.decide("j4", saying("step", []))

    def take(owner: str) -> Decide[str]:
        def decide(job: Job | None, runs: Mapping[str, Run]) -> Decision[str]:
            assert job is not None
            run = runs["step-1"]
            if run.status is not None:
                return Decision(f"held by {run.lease_owner}")
            claimed = run.model_copy(update={"status": RunStatus.RUNNING, "lease_owner": owner})
            # Only `mine` writes the job too, so what it remembers of the job stays current
            # and only the run's create can tell it that `theirs` got there first.
            touched = job.model_copy(update={"message": f"{owner} runs it"})
            return Decision(
                owner, job=touched if owner == "mine" else None, runs={"step-1": claimed}
            )

        return decide

    assert await theirs.decide("j4", take("theirs"), runs=["step-1"]) == "theirs"
    assert await mine.decide("j4", take("mine"), runs=["step-1"]) == "held by theirs"
    stored = await mine.get("j4")
    assert stored is not None
    assert stored.message == "step", "the losing decision wrote nothing"
