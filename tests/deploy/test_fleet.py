"""A stack with N processor processes behind its one push endpoint, as N Cloud Run instances:
stage runs spread over every process, a killed process is replaced while the others carry on, and
stopping the stack leaves no process behind."""

from __future__ import annotations

import socket
from collections.abc import Callable

from google.cloud import firestore

from deploy.local.ephemeral import Stack
from jobs.contract.models import JobStatus
from tests.deploy.test_local_stack import alive
from tests.support import (
    JobsWatcher,
    body_completions,
    processor_claiming,
    processor_log_lines_by_process,
    submit_diagnostic,
    wait_until,
)

BODY_DONE = "diagnostic step body completed"


def bodies_by_process(stack: Stack, job_ids: list[str]) -> dict[str, list[tuple[str, str]]]:
    """The (job, stage) bodies each processor process ran to their end."""
    return {
        name: [
            (line["job_id"], line["stage"])
            for line in lines
            if line["message"] == BODY_DONE and line.get("job_id") in job_ids
        ]
        for name, lines in processor_log_lines_by_process(stack).items()
    }


def test_stage_runs_spread_over_every_processor_process(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(processors=2)
    watcher = JobsWatcher.start(db, stack.settings)
    # Six jobs of three stages, each stage about 0.3 s: the emulator pushes two at a time.
    with stack.api() as api:
        job_ids = [
            submit_diagnostic(api, stages=3, work_units=6, unit_seconds=0.05) for _ in range(6)
        ]

    ended = [watcher.wait_terminal(job_id) for job_id in job_ids]
    watcher.stop()

    assert [job.status for job in ended] == [JobStatus.SUCCEEDED] * 6
    ran = bodies_by_process(stack, job_ids)
    assert sorted(ran) == ["processor-1", "processor-2"]
    assert all(len(runs) >= 3 for runs in ran.values()), ran
    every_body = sorted(run for runs in ran.values() for run in runs)
    assert every_body == sorted((job, f"step-{n}") for job in job_ids for n in (1, 2, 3))
    instances = stack.processor_instances()
    assert len({i["pid"] for i in instances}) == 2
    assert all(i["served"] >= 3 and i["restarts"] == 0 for i in instances), instances


def test_a_killed_processor_is_replaced_the_other_carries_on_and_stop_leaves_nothing(
    make_stack: Callable[..., Stack], db: firestore.Client
) -> None:
    stack = make_stack(processors=2)
    assert stack.processor.pid is not None
    before = [stack.processor.pid, *stack.processor_pids()]
    watcher = JobsWatcher.start(db, stack.settings)
    with stack.api() as api:
        job_id = submit_diagnostic(api, stages=2, work_units=30, unit_seconds=0.1)
    wait_until(lambda: processor_claiming(stack, job_id, "step-1") is not None, "step-1's claim")
    holder = processor_claiming(stack, job_id, "step-1")
    assert holder is not None

    killed = stack.kill_processor(holder)
    stack.wait_for_processors()
    job = watcher.wait_terminal(job_id, timeout=90)
    watcher.stop()

    assert job.status == JobStatus.SUCCEEDED
    assert body_completions(stack, job_id) == {"step-1": 1, "step-2": 1}
    instances = stack.processor_instances()
    assert [i["restarts"] for i in instances] == [int(n == holder) for n in range(2)]
    assert killed not in stack.processor_pids()
    everything = {*before, *stack.processor_pids()}
    stack.stop()
    assert [pid for pid in everything if alive(pid)] == []
    assert_port_closed(stack.processor_port)


def test_a_lone_processor_is_one_process_on_the_push_endpoint(stack: Stack) -> None:
    [instance] = stack.processor_instances()

    assert instance["pid"] == stack.processor.pid
    assert stack.processor_logs == [stack.log_dir / "processor.log"]


def assert_port_closed(port: int) -> None:
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", port)) != 0, f"port {port} still served"
