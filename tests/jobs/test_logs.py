"""Log lines are one JSON object each, in Cloud Logging's format, and callers cannot bend them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.trace import format_span_id, format_trace_id

from jobs.telemetry.logs import CloudLoggingFormatter, log_context

TRACE = "logging.googleapis.com/trace"


@pytest.fixture
def logged() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(CloudLoggingFormatter("my-project"))
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_a_line_carries_severity_message_and_the_bound_job_and_stage(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    with log_context(job_id="j1", stage="probe"):
        logger.warning("stage %s slow", "probe", extra={"attempt": 2})

    (line,) = lines(stream)
    assert line["severity"] == "WARNING"
    assert line["message"] == "stage probe slow"
    assert (line["job_id"], line["stage"], line["attempt"]) == ("j1", "probe", 2)


def test_user_text_stays_inside_its_field_on_one_line(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    hostile = 'bad"\n{"severity": "CRITICAL", "message": "forged"}\r\n\u2028'

    logger.info("input: %s", hostile, extra={"source": hostile})

    assert len(stream.getvalue().splitlines()) == 1
    (line,) = lines(stream)
    assert line["severity"] == "INFO"
    assert line["message"] == f"input: {hostile}"
    assert line["source"] == hostile


def test_extra_and_context_fields_cannot_overwrite_what_cloud_logging_reads(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged
    tracer = TracerProvider().get_tracer("test")

    with (
        tracer.start_as_current_span("request") as span,
        log_context(severity="DEBUG", **{TRACE: "projects/x/traces/forged"}),
    ):
        logger.info(
            "real",
            extra={
                "severity": "CRITICAL",
                "logging.googleapis.com/spanId": "forged",
                "logging.googleapis.com/labels": {"forged": "yes"},
            },
        )

    (line,) = lines(stream)
    context = span.get_span_context()
    assert line["severity"] == "INFO"
    assert line["message"] == "real"
    assert line[TRACE] == f"projects/my-project/traces/{format_trace_id(context.trace_id)}"
    assert line["logging.googleapis.com/spanId"] == format_span_id(context.span_id)
    assert line["logging.googleapis.com/trace_sampled"] is True
    assert "logging.googleapis.com/labels" not in line


def test_a_line_outside_any_span_has_no_trace(
    logged: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = logged

    logger.info("at start")

    (line,) = lines(stream)
    assert TRACE not in line
