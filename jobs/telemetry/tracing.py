"""OpenTelemetry traces: one trace follows a job from its submit through every stage.

HTTP requests carry their context in `traceparent` (or Cloud Run's `X-Cloud-Trace-Context`)
headers; stage messages carry it in their Pub/Sub attributes as a W3C `traceparent`, and the job
document keeps the submit's `traceparent` so that work started without one (the sweeper, a user's
retry) rejoins the job's trace. Spans are always made, so log lines always carry a trace id; they
are exported to Cloud Trace only when `LONGRUN_TRACE_EXPORTER=cloud-trace`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, MutableMapping
from typing import Any

from fastapi import FastAPI
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.cloud_trace_propagator import CloudTraceFormatPropagator
from opentelemetry.propagators.composite import CompositePropagator
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, Span, SpanKind
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from jobs.contract.settings import Settings

# Messages carry only the W3C format; HTTP requests may carry either (the W3C one wins).
_MESSAGE_PROPAGATOR = TraceContextTextMapPropagator()
_HTTP_PROPAGATOR = CompositePropagator(
    [CloudTraceFormatPropagator(), TraceContextTextMapPropagator()]
)


def configure_tracing(settings: Settings, service_name: str) -> TracerProvider:
    """Install the process's tracer provider (once) and the propagators HTTP requests use."""
    current = trace.get_tracer_provider()
    if isinstance(current, TracerProvider):  # already configured in this process
        return current
    provider = TracerProvider(resource=Resource.create({"service.name": service_name}))
    if settings.trace_exporter == "cloud-trace":
        # Imported here: the exporter pulls in the Cloud Trace client, needed only when deployed.
        from opentelemetry.exporter.cloud_trace import CloudTraceSpanExporter

        exporter = CloudTraceSpanExporter(project_id=settings.project_id)  # type: ignore[no-untyped-call]
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    propagate.set_global_textmap(_HTTP_PROPAGATOR)
    return provider


def instrument(app: FastAPI, settings: Settings, service_name: str) -> None:
    """Trace every request the app serves (health checks aside), in the trace its headers name."""
    from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

    provider = configure_tracing(settings, service_name)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls="/healthz,/readyz",
        exclude_spans=["receive", "send"],
    )


def tracer() -> trace.Tracer:
    return trace.get_tracer("longrun")


def inject(attributes: MutableMapping[str, str]) -> None:
    """Write the current trace context into a message's attributes (`traceparent`)."""
    _MESSAGE_PROPAGATOR.inject(attributes)


def extract(attributes: Mapping[str, str] | None) -> Context | None:
    """The trace context a message or a stored `traceparent` carries, or None if it has none."""
    context = _MESSAGE_PROPAGATOR.extract(dict(attributes or {}))
    if not trace.get_current_span(context).get_span_context().is_valid:
        return None
    return context


def current_traceparent() -> str | None:
    """The current span as a W3C `traceparent`, to store on the job document."""
    carrier: dict[str, str] = {}
    inject(carrier)
    return carrier.get("traceparent")


def _links_to_current() -> list[Link]:
    current = trace.get_current_span().get_span_context()
    return [Link(current)] if current.is_valid else []


@contextlib.contextmanager
def message_span(name: str, attributes: Mapping[str, str] | None, **fields: Any) -> Iterator[Span]:
    """A consumer span continuing the trace a Pub/Sub message carries.

    The HTTP request that delivered the message has a trace of its own (Cloud Run's); it is
    linked, not used as the parent, so every stage of a job stays in the job's trace.
    """
    parent = extract(attributes)
    links = _links_to_current() if parent is not None else []
    with tracer().start_as_current_span(
        name, context=parent, kind=SpanKind.CONSUMER, links=links, attributes=_named(fields)
    ) as span:
        yield span


@contextlib.contextmanager
def job_span(name: str, traceparent: str | None, **fields: Any) -> Iterator[Span]:
    """A span in the job's own trace (from the `traceparent` stored at submit), linked to the
    current one; within the current trace when the job has none stored."""
    parent = extract({"traceparent": traceparent} if traceparent else None)
    links = _links_to_current() if parent is not None else []
    with tracer().start_as_current_span(
        name, context=parent, links=links, attributes=_named(fields)
    ) as span:
        yield span


def _named(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {f"longrun.{key}": value for key, value in fields.items() if value is not None}


def annotate(**fields: Any) -> None:
    """Add `longrun.*` attributes to the current span (a no-op outside any span)."""
    trace.get_current_span().set_attributes(_named(fields))


def log_fields(project_id: str) -> dict[str, Any]:
    """The current span as Cloud Logging's trace fields, so Logging shows lines by trace."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return {}
    return {
        "logging.googleapis.com/trace": (
            f"projects/{project_id}/traces/{trace.format_trace_id(context.trace_id)}"
        ),
        "logging.googleapis.com/spanId": trace.format_span_id(context.span_id),
        "logging.googleapis.com/trace_sampled": context.trace_flags.sampled,
    }
