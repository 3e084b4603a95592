"""cloudbuild.yaml and the Firestore index file: they parse and hold what the services need."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from deploy import indexes

ROOT = Path(__file__).parents[2]
IMAGE = "${_REGION}-docker.pkg.dev/${PROJECT_ID}/${_REPOSITORY}/${_IMAGE}:${COMMIT_SHA}"


def build() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())
    return loaded


def steps() -> dict[str, dict[str, Any]]:
    return {step["id"]: step for step in build()["steps"]}


def test_steps_run_test_build_push_deploy_in_order() -> None:
    ids = [step["id"] for step in build()["steps"]]
    assert [i for i in ids if i in {"test", "build", "push", "deploy"}] == [
        "test",
        "build",
        "push",
        "deploy",
    ]
    by_id = steps()
    # Each waits for the one before it: nothing is built from untested code, nothing deployed
    # before it is pushed. (A step without waitFor would wait for all earlier steps.)
    assert by_id["build"]["waitFor"] == ["test"]
    assert by_id["push"]["waitFor"] == ["build"]
    assert by_id["deploy"]["waitFor"] == ["push"]
    for step in by_id.values():
        assert "-" not in step.get("waitFor", []), "no step starts at the beginning"


def test_the_tests_run_in_googles_emulators_image_through_ci() -> None:
    test = steps()["test"]
    assert test["name"].startswith("gcr.io/google.com/cloudsdktool/google-cloud-cli:emulators")
    assert ".ci/run" in " ".join(test["args"])
    assert "CI=true" in test["env"]


def test_the_commit_tagged_image_is_built_pushed_and_deployed() -> None:
    by_id = steps()
    assert f"--tag={IMAGE}" in by_id["build"]["args"]
    assert by_id["push"]["args"] == ["push", IMAGE]
    deploy = by_id["deploy"]
    assert deploy["args"][0] == "deploy/deploy.sh"  # one source of truth for the services' flags
    assert f"--image={IMAGE}" in deploy["args"]
    assert build()["images"] == [IMAGE]


def test_substitutions_name_region_and_repository() -> None:
    substitutions = build()["substitutions"]
    assert {"_REGION", "_REPOSITORY", "_IMAGE", "_ENV_FILE"} <= substitutions.keys()
    text = (ROOT / "cloudbuild.yaml").read_text()
    used = set(re.findall(r"\$\{(_[A-Z_]+)\}", text))
    assert used == set(substitutions), "MUST_MATCH fails a build on an unused substitution"


def declared_indexes() -> list[indexes.Signature]:
    return indexes.declared(json.loads((ROOT / "deploy/firestore.indexes.json").read_text()))


def test_an_index_for_every_query_the_code_makes() -> None:
    store = (ROOT / "jobs/cloud/store.py").read_text()
    # The queries, as the store writes them (if these change, so must the indexes).
    assert 'FieldFilter("owner", "==", owner)' in store
    assert 'FieldFilter("status", "==", status.value)' in store
    assert 'order_by("created_at", direction=firestore.Query.DESCENDING)' in store
    assert 'FieldFilter("updated_at", "<", before)' in store
    needed = [
        # A user's jobs, newest first; and the same filtered by status.
        ("jobs", "collection", (("owner", "order=ascending"), ("created_at", "order=descending"))),
        (
            "jobs",
            "collection",
            (
                ("owner", "order=ascending"),
                ("status", "order=ascending"),
                ("created_at", "order=descending"),
            ),
        ),
        # The sweeper: jobs in a status not updated since a time.
        ("jobs", "collection", (("status", "order=ascending"), ("updated_at", "order=ascending"))),
    ]
    declared = declared_indexes()
    for index in needed:
        assert index in declared, index


def test_indexes_that_exist_are_not_created_again() -> None:
    wanted = json.loads((ROOT / "deploy/firestore.indexes.json").read_text())
    # What `gcloud firestore indexes composite list --format=json` shows for them: Firestore adds
    # its __name__ field to each.
    listed = [
        {
            "name": f"projects/p/databases/(default)/collectionGroups/{group}/indexes/i{n}",
            "queryScope": scope.upper().replace("-", "_"),
            "fields": [
                {"fieldPath": path, "order": order.split("=")[1].upper()} for path, order in fields
            ]
            + [{"fieldPath": "__name__", "order": "ASCENDING"}],
        }
        for n, (group, scope, fields) in enumerate(declared_indexes())
    ]
    assert indexes.missing(wanted, listed) == []
    assert len(indexes.missing(wanted, listed[1:])) == 1
    assert indexes.missing(wanted, []) == declared_indexes()


def test_log_metric_configs_parse_and_read_the_logged_fields() -> None:
    configs = {
        p.stem: yaml.safe_load(p.read_text()) for p in (ROOT / "deploy/metrics").glob("*.yaml")
    }
    duration = configs["stage-duration"]
    assert 'jsonPayload.message="stage ended"' in duration["filter"]
    assert duration["valueExtractor"] == "EXTRACT(jsonPayload.duration_seconds)"
    assert duration["metricDescriptor"]["valueType"] == "DISTRIBUTION"
    assert configs["queue-wait"]["valueExtractor"] == "EXTRACT(jsonPayload.queue_wait_seconds)"
    finished = configs["jobs-finished"]
    assert 'jsonPayload.message="job finished"' in finished["filter"]
    assert finished["labelExtractors"]["status"] == "EXTRACT(jsonPayload.status)"
    assert 'jsonPayload.outcome="retrying"' in configs["stage-retries"]["filter"]
    for config in configs.values():
        labels = {label["key"] for label in config["metricDescriptor"].get("labels", [])}
        assert labels == set(config.get("labelExtractors", {})), config["description"]
