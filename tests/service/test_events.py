"""The change feed behind SSE keeps going when its Firestore listener goes deaf."""

from __future__ import annotations

import os

import httpx
import pytest
from google.cloud import firestore

from deploy.local.ephemeral import Stack
from deploy.local.processes import free_port
from jobs.cloud.store import JobStore
from jobs.contract.models import JobStatus
from service.events import job_changes
from tests.support import submit_diagnostic


async def test_a_listener_that_never_hears_back_still_yields_every_new_state(
    stack: Stack, api: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = os.environ["GOOGLE_CLOUD_PROJECT"]
    # A listener on an address where nothing answers: its stream never delivers anything.
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    deaf = firestore.Client(project=project)
    monkeypatch.undo()
    store = JobStore(firestore.AsyncClient(project=project), stack.settings)
    job_id = submit_diagnostic(api, stages=2, work_units=6, unit_seconds=0.25)

    seen = []
    async for job in job_changes(deaf, store, job_id, quiet_seconds=0.2):
        assert job is not None
        seen.append(job)
        if job.status.terminal:
            break

    versions = [job.version for job in seen]
    assert versions == sorted(set(versions))
    assert JobStatus.RUNNING in {job.status for job in seen}
    assert seen[-1].status == JobStatus.SUCCEEDED
