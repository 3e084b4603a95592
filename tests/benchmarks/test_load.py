"""The load run of benchmarks/load.py, held to its promises: every job done, none run twice."""

from __future__ import annotations

from google.cloud import firestore

from benchmarks.load import run_load
from deploy.local.ephemeral import Stack


def test_200_jobs_from_20_concurrent_clients_all_succeed_once(
    stack: Stack, db: firestore.Client
) -> None:
    report = run_load(stack, db, jobs=200, clients=20)

    assert report.succeeded == 200
    assert report.not_finished == 0
    assert report.stages_run_more_than_once == 0
