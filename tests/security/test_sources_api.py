"""Sources end to end on a running stack: the confused deputy (one user naming another's objects
through the processor's access) is refused at submit, and again by the processor; a bucket the
operator lists works; https:// hosts that can be refused without network are, at submit."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from google.cloud import firestore

from cli.uploading import upload_file
from deploy.local.ephemeral import Stack, start_stack
from jobs.cloud.storage import Storage
from jobs.cloud.store import job_to_document
from jobs.contract.models import JobStatus
from pipelines.media.spec import MEDIA_ANALYSIS, MediaInput, MediaOptions
from samples.media import make_audio
from service.submission import plan_job
from tests.support import JobsWatcher, publish_by_hand

SOURCE_BUCKET = "listed-media-sources"
OWNER, OTHER = "alice", "bob"


@pytest.fixture(scope="module")
def sources_stack(log_dir: Path, emulator_hosts: dict[str, str]) -> Iterator[Stack]:
    """A stack whose operator lets users name one bucket of their own in gs:// sources."""
    running = start_stack(log_dir / "sources", LONGRUN_SOURCE_BUCKETS=SOURCE_BUCKET)
    yield running
    running.stop()


@pytest.fixture
def watcher(db: firestore.Client, sources_stack: Stack) -> Iterator[JobsWatcher]:
    jobs = JobsWatcher.start(db, sources_stack.settings)
    yield jobs
    jobs.stop()


def private_upload(stack: Stack, tmp_path: Path) -> str:
    """Alice's upload; the object name it is stored under (uploads/<id>/<file>)."""
    path = tmp_path / "private.mp4"
    path.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(4096))
    with stack.api(OWNER) as alice:
        upload_id = upload_file(alice, path, "video/mp4")
    return f"uploads/{upload_id}/private.mp4"


def respellings(bucket: str) -> list[str]:
    """Ways to write `bucket` that a careless comparison misses and Cloud Storage may not."""
    escaped = [bucket[:i] + f"%{ord(c):02X}" + bucket[i + 1 :] for i, c in enumerate(bucket)]
    full_width = chr(ord(bucket[0]) + 0xFEE0) + bucket[1:]
    return [*escaped, bucket.upper(), f"{bucket}.", full_width, bucket]


def job_count(db: firestore.Client, stack: Stack) -> int:
    return len(list(db.collection(stack.settings.jobs_collection).stream()))


def test_another_user_s_upload_cannot_be_named_through_longrun_s_bucket(
    sources_stack: Stack, db: firestore.Client, tmp_path: Path
) -> None:
    name = private_upload(sources_stack, tmp_path)
    own = sources_stack.settings.bucket_name

    with sources_stack.api(OTHER) as bob:
        answers = [
            bob.post(
                "/v1/jobs",
                json={"pipeline": "media-analysis", "input": {"source": f"gs://{b}/{name}"}},
            )
            for b in respellings(own)
        ]
        bobs_jobs = bob.get("/v1/jobs").json()["jobs"]

    assert [a.status_code for a in answers] == [422] * len(answers)
    assert {a.json()["code"] for a in answers} == {"SOURCE_NOT_ALLOWED"}
    assert all(a.headers["content-type"] == "application/problem+json" for a in answers)
    assert bobs_jobs == []
    assert job_count(db, sources_stack) == 0


def test_the_processor_refuses_a_respelled_bucket_that_reached_it_anyway(
    sources_stack: Stack, watcher: JobsWatcher, db: firestore.Client, tmp_path: Path
) -> None:
    # As a job stored before these checks existed would reach it: straight into Firestore.
    name = private_upload(sources_stack, tmp_path)
    own = sources_stack.settings.bucket_name
    escaped = f"gs://{own[0]}%{ord(own[1]):02x}{own[2:]}/{name}"
    params = MediaInput.model_construct(source=escaped, chat=None, options=MediaOptions())
    job = plan_job(
        MEDIA_ANALYSIS,
        params,
        job_id=uuid.uuid4().hex[:20],
        owner=OTHER,
        settings=sources_stack.settings,
    )
    db.collection(sources_stack.settings.jobs_collection).document(job.job_id).set(
        job_to_document(job)
    )

    publish_by_hand(sources_stack, job.job_id, "fetch")
    final = watcher.wait_terminal(job.job_id, timeout=60)

    assert final.status == JobStatus.FAILED
    assert final.error is not None
    assert (final.error.code, final.error.stage) == ("SOURCE_NOT_ALLOWED", "fetch")
    assert final.error.retryable is False
    assert final.stages[0].attempts == 1
    copied = Storage(sources_stack.settings).bucket.list_blobs(prefix=f"jobs/{job.job_id}/")
    assert list(copied) == []


def test_a_bucket_the_operator_lists_is_read_end_to_end(
    sources_stack: Stack, watcher: JobsWatcher, tmp_path: Path
) -> None:
    path = tmp_path / "talk.wav"
    make_audio(path, duration_seconds=12.0, bursts_at=[4.0])
    client = Storage(sources_stack.settings)._client
    bucket = client.bucket(SOURCE_BUCKET)
    if not bucket.exists():
        client.create_bucket(SOURCE_BUCKET)
    bucket.blob("shows/talk.wav").upload_from_filename(str(path))

    with sources_stack.api(OWNER) as alice:
        submitted = alice.post(
            "/v1/jobs",
            json={
                "pipeline": "media-analysis",
                "input": {"source": f"gs://{SOURCE_BUCKET}/shows/talk.wav"},
            },
        )
    assert submitted.status_code == 202, submitted.text
    final = watcher.wait_terminal(submitted.json()["job_id"], timeout=180)

    assert final.status == JobStatus.SUCCEEDED, final.error
    assert final.result is not None
    assert final.result["has_video"] is False


def test_a_bucket_the_operator_does_not_list_is_refused_at_submit(
    sources_stack: Stack,
) -> None:
    with sources_stack.api(OWNER) as alice:
        refused = alice.post(
            "/v1/jobs",
            json={"pipeline": "media-analysis", "input": {"source": "gs://other-media/x.mp4"}},
        )

    assert refused.status_code == 422
    assert refused.json()["code"] == "SOURCE_NOT_ALLOWED"
    assert "other-media" in refused.json()["errors"][0]["message"]


def test_gs_sources_are_off_until_the_operator_lists_buckets(api: httpx.Client) -> None:
    refused = api.post(
        "/v1/jobs",
        json={"pipeline": "media-analysis", "input": {"source": f"gs://{SOURCE_BUCKET}/x.wav"}},
    )

    assert refused.status_code == 422
    assert refused.json()["code"] == "SOURCE_NOT_ALLOWED"
    assert "LONGRUN_SOURCE_BUCKETS" in refused.json()["errors"][0]["message"]


@pytest.mark.parametrize(
    "url",
    [
        "https://2130706433/vod.mp4",
        "https://0x7f000001/vod.mp4",
        "https://127.1/vod.mp4",
        "https://017700000001/vod.mp4",
        "https://\uff4c\uff4f\uff43\uff41\uff4c\uff48\uff4f\uff53\uff54/vod.mp4",
        "https://0xa9fea9fe/computeMetadata/v1/",
        "https://vm/vod.mp4",  # in this machine's /etc/hosts, and dot-less
    ],
)
def test_hosts_refusable_without_network_are_refused_before_a_job_exists(
    stack: Stack, api: httpx.Client, db: firestore.Client, url: str
) -> None:
    refused = api.post("/v1/jobs", json={"pipeline": "media-analysis", "input": {"source": url}})

    assert refused.status_code == 422
    assert refused.json()["code"] == "SOURCE_NOT_ALLOWED"
    assert job_count(db, stack) == 0
