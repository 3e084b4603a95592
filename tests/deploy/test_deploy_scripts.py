"""The deploy scripts: their dry run is the exact command sequence (a golden file), it holds the
settings production depends on, gcloud itself accepts every command, and shellcheck is clean.

`UPDATE_GOLDEN=1 pytest tests/deploy/test_deploy_scripts.py` rewrites the golden files after an
intended change; review the diff like code.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
GOLDEN = Path(__file__).parent / "golden"
ENV_FILE = GOLDEN / "env"
TAG = "0123456789abcdef0123456789abcdef01234567"
SCRIPTS = {
    "setup": ["deploy/setup.sh"],
    "deploy": ["deploy/deploy.sh", f"--tag={TAG}"],
    "teardown": ["deploy/teardown.sh"],
}
TTL_GROUPS = {"jobs", "runs", "uploads", "idempotency_keys", "quota_slots"}
PUSH = "longrun-push@acme-media.iam.gserviceaccount.com"
PROCESSOR = "longrun-processor@acme-media.iam.gserviceaccount.com"
PROCESSOR_URL = "https://PROCESSOR_URL"


def dry_run(script: str, *extra: str) -> str:
    args = ["bash", *SCRIPTS[script], f"--env={ENV_FILE}", "--dry-run", *extra]
    done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def commands(script: str) -> list[list[str]]:
    """The printed commands, split as a shell would (comment lines left out)."""
    return [shlex.split(line) for line in dry_run(script).splitlines() if not line.startswith("#")]


def find(script: str, *words: str) -> list[list[str]]:
    """Commands that start with `words`."""
    return [command for command in commands(script) if command[: len(words)] == list(words)]


def flags(command: list[str]) -> dict[str, str]:
    """`--name=value` flags as a dict (a bare `--name` maps to "")."""
    result: dict[str, str] = {}
    for arg in command:
        if arg.startswith("--"):
            name, _, value = arg[2:].partition("=")
            result[name] = value
    return result


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_dry_run_matches_the_golden_sequence(script: str) -> None:
    printed = dry_run(script)
    golden = GOLDEN / f"{script}.txt"
    if os.environ.get("UPDATE_GOLDEN") == "1":
        golden.write_text(printed)
    assert printed == golden.read_text(), f"rerun with UPDATE_GOLDEN=1 if {script}.sh changed"


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_dry_run_is_the_same_every_time(script: str) -> None:
    assert dry_run(script) == dry_run(script)


def test_the_processor_is_private_and_runs_as_its_own_account() -> None:
    deploys = find("deploy", "gcloud", "run", "deploy", "longrun-processor")
    assert deploys, "the processor is deployed"
    for deploy in deploys:
        settings = flags(deploy)
        assert "no-allow-unauthenticated" in settings
        assert "allow-unauthenticated" not in settings
        assert settings["service-account"] == "longrun-processor@acme-media.iam.gserviceaccount.com"
        assert int(settings["timeout"]) >= 480  # the stage time budget
        assert settings["set-secrets"] == "LONGRUN_WEBHOOK_SECRET=longrun-webhook-secret:latest"
    final = env_vars(deploys[-1])
    assert final["LONGRUN_APP"] == "processor"
    assert final["LONGRUN_PUSH_AUTH_SERVICE_ACCOUNT"] == PUSH
    assert final["LONGRUN_PUSH_AUTH_AUDIENCE"] == PROCESSOR_URL
    assert final["LONGRUN_TRACE_EXPORTER"] == "cloud-trace"
    invokers = find("deploy", "gcloud", "run", "services", "add-iam-policy-binding")
    assert [(c[4], flags(c)["member"], flags(c)["role"]) for c in invokers] == [
        ("longrun-processor", f"serviceAccount:{PUSH}", "roles/run.invoker")
    ]


def env_vars(command: list[str]) -> dict[str, str]:
    """The --set-env-vars flag of a `run deploy`, with its `^|^` separator undone."""
    value = flags(command)["set-env-vars"]
    assert value.startswith("^|^")
    return dict(pair.split("=", 1) for pair in value[3:].split("|"))


def test_the_api_is_public_with_long_requests_for_sse() -> None:
    [deploy] = find("deploy", "gcloud", "run", "deploy", "longrun-api")
    settings = flags(deploy)
    assert "allow-unauthenticated" in settings
    assert settings["timeout"] == "3600"
    assert settings["service-account"] == "longrun-api@acme-media.iam.gserviceaccount.com"
    env = env_vars(deploy)
    assert env["LONGRUN_APP"] == "service"
    assert env["LONGRUN_ALLOWED_ORIGINS"] == '["https://acme-media.web.app"]'
    assert env["LONGRUN_BUCKET"] == "acme-media-longrun"
    assert env["GOOGLE_CLOUD_PROJECT"] == "acme-media"


def test_the_processor_scales_out_running_as_many_stages_per_instance_as_it_has_cpus() -> None:
    deploys = find("deploy", "gcloud", "run", "deploy", "longrun-processor")
    for deploy in deploys:
        settings = flags(deploy)
        assert (settings["min-instances"], settings["max-instances"]) == ("0", "50")
        assert (settings["cpu"], settings["memory"], settings["concurrency"]) == ("2", "8Gi", "2")
        assert settings["execution-environment"] == "gen2"
        # Cost accounting charges each stage the size deployed.
        env = env_vars(deploy)
        assert env["LONGRUN_PROCESSOR_VCPUS"] == settings["cpu"]
        assert f"{env['LONGRUN_PROCESSOR_MEMORY_GIB']}Gi" == settings["memory"]


def test_a_push_a_full_fleet_refuses_comes_back_for_over_an_hour_before_it_dead_letters() -> None:
    """Past max-instances x concurrency Cloud Run answers 429 and Pub/Sub backs off; every
    refusal counts as a delivery, so the backoff and the delivery limit must outlast a backlog."""
    processor = flags(find("deploy", "gcloud", "run", "deploy", "longrun-processor")[-1])
    created = find("deploy", "gcloud", "pubsub", "subscriptions", "create", "longrun-stages-push")
    stages = flags(created[0])
    low, high = (int(stages[f"{end}-retry-delay"].removesuffix("s")) for end in ("min", "max"))
    gaps = [min(high, low * 2**n) for n in range(int(stages["max-delivery-attempts"]) - 1)]

    assert sum(gaps) >= 3600, gaps
    assert stages["ack-deadline"] == processor["timeout"]


def with_env(
    tmp_path: Path, changes: dict[str, str | None], script: str = "deploy"
) -> subprocess.CompletedProcess[str]:
    """A script's dry run on the sample env file with some settings changed (None: removed)."""
    lines = [
        line for line in ENV_FILE.read_text().splitlines() if line.partition("=")[0] not in changes
    ]
    lines += [f"{name}={value}" for name, value in changes.items() if value is not None]
    env_file = tmp_path / "env"
    env_file.write_text("\n".join(lines) + "\n")
    args = ["bash", *SCRIPTS[script], f"--env={env_file}", "--dry-run"]
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=False)


SIZE = ("PROCESSOR_CPU", "PROCESSOR_MEMORY_GIB", "PROCESSOR_CONCURRENCY")
BOUNDS = ("PROCESSOR_MIN_INSTANCES", "PROCESSOR_MAX_INSTANCES")


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({name: None for name in SIZE + BOUNDS}, ("2", "8Gi", "2", "0", "50")),
        (
            dict(zip(SIZE + BOUNDS, ("4", "16", "4", "1", "200"), strict=True)),
            ("4", "16Gi", "4", "1", "200"),
        ),
    ],
    ids=["defaults", "set"],
)
def test_the_processor_size_and_bounds_come_from_the_env_file(
    tmp_path: Path, changes: dict[str, str | None], expected: tuple[str, ...]
) -> None:
    done = with_env(tmp_path, changes)

    assert done.returncode == 0, done.stderr
    [deploy, *_] = [
        shlex.split(line)
        for line in done.stdout.splitlines()
        if line.startswith("gcloud run deploy longrun-processor")
    ]
    settings = flags(deploy)
    names = ("cpu", "memory", "concurrency", "min-instances", "max-instances")
    assert tuple(settings[name] for name in names) == expected
    assert env_vars(deploy)["LONGRUN_PROCESSOR_VCPUS"] == expected[0]


@pytest.mark.parametrize(
    "setting",
    [
        "PROCESSOR_CPU=3",
        "PROCESSOR_MEMORY_GIB=9",  # more than 4 GiB per vCPU
        "PROCESSOR_CONCURRENCY=0",
        "PROCESSOR_MAX_INSTANCES=lots",
        "PROCESSOR_MIN_INSTANCES=60",  # above the maximum
    ],
)
def test_a_processor_size_cloud_run_would_refuse_is_named_before_anything_runs(
    tmp_path: Path, setting: str
) -> None:
    name, _, value = setting.partition("=")

    done = with_env(tmp_path, {name: value})

    assert done.returncode == 2
    assert f"sets {setting}" in done.stderr
    assert done.stdout == ""


def test_the_google_engine_gets_the_speech_api_and_role_and_the_default_asks_for_neither(
    tmp_path: Path,
) -> None:
    google = with_env(tmp_path, {"TRANSCRIPTION_ENGINE": "google"}, "setup")
    default = with_env(tmp_path, {"TRANSCRIPTION_ENGINE": None}, "setup")

    assert google.returncode == 0, google.stderr
    assert default.returncode == 0, default.stderr
    speech_api = "gcloud services enable --project=acme-media speech.googleapis.com"
    speech_role = f"--member=serviceAccount:{PROCESSOR} --role=roles/speech.client"
    assert speech_api in google.stdout
    assert speech_role in google.stdout
    assert "speech" not in default.stdout


@pytest.mark.parametrize(("engine", "expected"), [(None, "pocketsphinx"), ("google", "google")])
def test_the_processor_transcribes_with_the_engine_the_env_file_names(
    tmp_path: Path, engine: str | None, expected: str
) -> None:
    done = with_env(tmp_path, {"TRANSCRIPTION_ENGINE": engine})

    assert done.returncode == 0, done.stderr
    [deploy] = [
        shlex.split(line)
        for line in done.stdout.splitlines()
        if line.startswith("gcloud run deploy longrun-processor")
    ][:1]
    assert env_vars(deploy)["LONGRUN_TRANSCRIPTION_ENGINE"] == expected


def test_an_engine_longrun_does_not_have_is_named_before_anything_runs(tmp_path: Path) -> None:
    done = with_env(tmp_path, {"TRANSCRIPTION_ENGINE": "whisper"}, "setup")

    assert done.returncode == 2
    assert "sets TRANSCRIPTION_ENGINE=whisper" in done.stderr
    assert done.stdout == ""


def test_the_processor_is_deployed_before_anything_points_at_it() -> None:
    order = [" ".join(command[:4]) for command in commands("deploy")]
    first_processor = order.index("gcloud run deploy longrun-processor")
    api = order.index("gcloud run deploy longrun-api")
    subscription = order.index("gcloud pubsub subscriptions create")
    scheduler = order.index("gcloud scheduler jobs create")
    assert first_processor < subscription < scheduler < api


def test_the_push_subscription_authenticates_retries_and_dead_letters() -> None:
    created = find("deploy", "gcloud", "pubsub", "subscriptions", "create")
    subscriptions = {c[4]: flags(c) for c in created}
    stages = subscriptions["longrun-stages-push"]
    assert stages["topic"] == "longrun-stages"
    assert stages["push-endpoint"] == f"{PROCESSOR_URL}/pubsub/push"
    assert stages["push-auth-service-account"] == PUSH
    assert stages["push-auth-token-audience"] == PROCESSOR_URL
    assert stages["ack-deadline"] == "600"
    assert stages["expiration-period"] == "never"
    assert stages["dead-letter-topic"] == "longrun-stages-dead-letter"
    assert stages["max-delivery-attempts"] == "20"
    assert {"min-retry-delay", "max-retry-delay"} <= stages.keys()
    dead = subscriptions["longrun-stages-dead-letter-push"]
    assert dead["push-endpoint"] == f"{PROCESSOR_URL}/pubsub/dead-letter"
    assert dead["push-auth-token-audience"] == PROCESSOR_URL
    assert dead["expiration-period"] == "never"


def test_the_pubsub_service_agent_gets_both_dead_letter_permissions() -> None:
    agent = "serviceAccount:service-PROJECT_NUMBER@gcp-sa-pubsub.iam.gserviceaccount.com"
    grants = {
        (c[2], c[4], flags(c)["role"])
        for c in find("deploy", "gcloud", "pubsub")
        if c[3] == "add-iam-policy-binding" and flags(c)["member"] == agent
    }
    assert grants == {
        ("topics", "longrun-stages-dead-letter", "roles/pubsub.publisher"),
        ("subscriptions", "longrun-stages-push", "roles/pubsub.subscriber"),
    }


def test_the_sweeper_is_called_each_minute_with_an_oidc_token() -> None:
    [job] = find("deploy", "gcloud", "scheduler", "jobs", "create", "http")
    settings = flags(job)
    assert settings["uri"] == f"{PROCESSOR_URL}/tasks/sweep"
    assert settings["schedule"] == "* * * * *"
    assert settings["oidc-service-account-email"] == PUSH
    assert settings["oidc-token-audience"] == PROCESSOR_URL


def test_every_expiring_collection_gets_a_ttl_policy_on_expire_at() -> None:
    ttls = find("setup", "gcloud", "firestore", "fields", "ttls", "update")
    assert {c[5] for c in ttls} == {"expire_at"}
    assert {flags(c)["collection-group"] for c in ttls} == TTL_GROUPS
    assert all("enable-ttl" in flags(c) for c in ttls)


def test_artifacts_outlive_their_job_by_one_day() -> None:
    printed = dry_run("setup")
    match = re.search(r'lifecycle\.json: .*"Delete".*"age": (\d+)', printed)
    assert match is not None
    assert int(match.group(1)) == 7 + 1  # JOB_TTL_DAYS in the sample env file, plus the margin
    [update] = [
        c
        for c in find("setup", "gcloud", "storage", "buckets", "update")
        if c[4].endswith("-longrun")
    ]
    assert flags(update)["lifecycle-file"] == "$WORK/lifecycle.json"


def test_least_privilege_roles() -> None:
    granted = commands("setup")
    project_roles = {
        (flags(c)["member"].split(":")[1].split("@")[0], flags(c)["role"])
        for c in granted
        if c[:3] == ["gcloud", "projects", "add-iam-policy-binding"]
    }
    # No runtime account holds a broad role on the whole project; only the API reads users
    # (the revocation check of every ID token).
    runtime_roles = {"roles/datastore.user", "roles/cloudtrace.agent"}
    for account, role in project_roles:
        if account == "longrun-api":
            assert role in {*runtime_roles, "roles/firebaseauth.viewer"}, (account, role)
        elif account != "longrun-deploy":
            assert role in runtime_roles, (account, role)
    assert ("longrun-api", "roles/firebaseauth.viewer") in project_roles
    secret = [c for c in granted if c[:3] == ["gcloud", "secrets", "add-iam-policy-binding"]]
    assert [(c[3], flags(c)["member"], flags(c)["role"]) for c in secret] == [
        (
            "longrun-webhook-secret",
            "serviceAccount:longrun-processor@acme-media.iam.gserviceaccount.com",
            "roles/secretmanager.secretAccessor",
        )
    ]
    signers = [
        (c[4], flags(c)["member"])
        for c in granted
        if c[:4] == ["gcloud", "iam", "service-accounts", "add-iam-policy-binding"]
        and flags(c)["role"] == "roles/iam.serviceAccountTokenCreator"
        and "longrun-api@" in c[4]
    ]
    api = "longrun-api@acme-media.iam.gserviceaccount.com"
    assert signers == [(api, f"serviceAccount:{api}")]  # signBlob on itself only


def test_every_declared_index_is_created() -> None:
    created = find("setup", "gcloud", "firestore", "indexes", "composite", "create")
    assert len(created) == 3
    assert [
        "--collection-group=jobs",
        "--query-scope=collection",
        "--field-config=field-path=owner,order=ascending",
        "--field-config=field-path=created_at,order=descending",
    ] in [c[7:-1] for c in created]


def test_log_based_metrics_come_from_the_committed_configs() -> None:
    created = find("setup", "gcloud", "logging", "metrics", "create")
    files = {flags(c)["config-from-file"] for c in created}
    assert files == {f"deploy/metrics/{p.name}" for p in (ROOT / "deploy/metrics").glob("*.yaml")}
    assert {c[4] for c in created} == {
        "longrun_stage_duration",
        "longrun_queue_wait",
        "longrun_jobs_finished",
        "longrun_stage_retries",
    }


def test_the_webhook_secret_value_is_never_printed() -> None:
    [create] = find("setup", "gcloud", "secrets", "create")
    assert flags(create)["data-file"] == "-"  # read from stdin


def test_teardown_deletes_what_setup_and_deploy_made() -> None:
    deleted = " ".join(" ".join(c) for c in commands("teardown"))
    for name in (
        "longrun-sweep",
        "longrun-api",
        "longrun-processor",
        "longrun-stages-push",
        "longrun-stages-dead-letter-push",
        "longrun-stages ",
        "longrun-stages-dead-letter ",
        "longrun-webhook-secret",
        "gs://acme-media-longrun ",
        "longrun-push@acme-media.iam.gserviceaccount.com",
    ):
        assert name in deleted + " ", name


def test_teardown_asks_first() -> None:
    args = ["bash", "deploy/teardown.sh", f"--env={ENV_FILE}"]
    done = subprocess.run(args, cwd=ROOT, input="no\n", capture_output=True, text=True, check=False)
    assert done.returncode == 1
    assert "Nothing deleted." in done.stderr
    assert done.stdout == ""


def test_a_missing_setting_is_named(tmp_path: Path) -> None:
    partial = tmp_path / "env"
    partial.write_text("PROJECT_ID=acme-media\n")
    done = subprocess.run(
        ["bash", "deploy/setup.sh", f"--env={partial}", "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "does not set REGION" in done.stderr


VERBS = {"create", "update", "delete", "deploy", "enable", "rm"} | {
    "add-iam-policy-binding",
    "remove-iam-policy-binding",
}


def gcloud_shape(command: list[str]) -> tuple[str, ...]:
    """The command's path (up to its verb) and flag names: one parse check per shape is enough."""
    words = [arg for arg in command if not arg.startswith("-")]
    end = next(i for i, word in enumerate(words) if word in VERBS) + 1
    if words[end : end + 1] == ["http"]:
        end += 1
    return (*words[:end], *sorted(flags(command)))


def test_gcloud_accepts_every_printed_command(tmp_path: Path) -> None:
    """With no account configured gcloud parses a command fully, then stops before calling
    Google (exit 1); an unknown flag or a bad value is exit 2."""
    gcloud = shutil.which("gcloud")
    assert gcloud is not None, "the Google Cloud CLI is part of the dev setup (.ci/run checks it)"
    shapes: dict[tuple[str, ...], list[str]] = {}
    for script in SCRIPTS:
        for command in commands(script):
            if command[0] == "gcloud":
                shapes.setdefault(gcloud_shape(command), command)
    work = tmp_path / "work"
    work.mkdir()
    env = {
        **os.environ,
        "CLOUDSDK_CONFIG": str(tmp_path / "config"),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
    }
    env.pop("CLOUDSDK_CORE_PROJECT", None)

    def parse(command: list[str]) -> tuple[str, int, str] | None:
        args = [gcloud, *(arg.replace("$WORK", str(work)) for arg in command[1:])]
        done = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        if done.returncode == 1 and "active account" in done.stderr:
            return None
        return (shlex.join(command), done.returncode, done.stderr[-300:])

    # gcloud spends most of a second starting: a few at a time.
    with ThreadPoolExecutor(max_workers=4) as pool:
        rejected = [r for r in pool.map(parse, shapes.values()) if r is not None]
    assert rejected == []


def test_shellcheck_is_clean() -> None:
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        if os.environ.get("CI") == "true":
            pytest.fail("shellcheck is missing in CI: .ci/run installs it")
        pytest.skip("shellcheck is not installed here (apt-get install shellcheck); CI runs it")
    scripts = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "deploy").glob("*.sh"))
    assert len(scripts) >= 4
    done = subprocess.run(
        [shellcheck, "--external-sources", *scripts, ".ci/run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout
