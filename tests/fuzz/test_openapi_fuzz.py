"""Schemathesis against the live OpenAPI document of a running stack: whatever a client sends,
valid or not, no 5xx, and every answer (status, content type, headers, body) is what the document
says.

Schemathesis's own pytest loader does not work with pytest 9 (it sets a node attribute pytest
removed), so the test walks the operations itself and runs each one's Hypothesis strategy.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from deploy.local.ephemeral import Stack, start_stack

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
EXAMPLES_PER_OPERATION = 25


@pytest.fixture(scope="module")
def fuzzed_stack(log_dir: Path) -> Iterator[Stack]:
    """A stack of its own with the product's quotas on, whose processor is stopped: fuzzed jobs
    stay queued rather than running diagnostics with arbitrary knobs."""
    stack = start_stack(
        log_dir / "fuzz", LONGRUN_JOBS_PER_HOUR="20", LONGRUN_ACTIVE_JOBS_PER_USER="3"
    )
    stack.processor.stop()
    yield stack
    stack.stop()


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_breaks_the_api_or_its_contract(fuzzed_stack: Stack, mode: Any) -> None:
    schema = schemathesis.openapi.from_url(f"{fuzzed_stack.api_url}/openapi.json")
    headers = fuzzed_stack.auth_headers("fuzzer")
    failures: dict[str, str] = {}
    operations = [result.ok() for result in schema.get_all_operations()]

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(
            max_examples=EXAMPLES_PER_OPERATION,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def call(case: Any) -> None:
            case.call_and_validate(
                base_url=fuzzed_stack.api_url, headers=headers, checks=CHECKS, timeout=30
            )

        try:
            call()
        except Unsatisfiable:
            pass  # nothing to get wrong: an operation without parameters or body (/healthz)
        except Exception as exc:  # every operation is tried; all failures are reported together
            failures[operation.label] = str(exc)[:2000]

    assert len(operations) >= 10
    assert failures == {}
