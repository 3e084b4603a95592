"""The private processor: Pub/Sub pushes one stage per request here."""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from jobs.cloud.publisher import StagePublisher
from jobs.cloud.storage import Storage
from jobs.cloud.store import JobStore, firestore_client
from jobs.contract.errors import Unavailable
from jobs.contract.settings import Settings
from jobs.telemetry import tracing
from jobs.telemetry.logs import configure_logging
from jobs.telemetry.problems import install_problem_handlers, problem_response
from pipelines.catalog import PIPELINES
from processor import functions, oidc, push, tasks
from processor.leases import Leases
from processor.runtime import Runtime

# Cloud Run allows 10 s after SIGTERM; uvicorn's grace period takes most, releases get the rest.
SHUTDOWN_RELEASE_SECONDS = 2.0


def instance_name() -> str:
    """Names this process as a lease owner: unique even when two share a host and a pid."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the processor app; clients are made in its lifespan."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.project_id)
    stage_functions = functions.load(PIPELINES.values())  # refuse to start over a missing stage

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = firestore_client(settings)
        store = JobStore(client, settings)
        publisher = StagePublisher(settings)
        app.state.runtime = Runtime(
            settings=settings,
            store=store,
            publisher=publisher,
            storage=Storage(settings),
            leases=Leases(store, settings, owner=instance_name()),
            functions=stage_functions,
        )
        try:
            yield
        finally:
            await app.state.runtime.drain(timeout_seconds=SHUTDOWN_RELEASE_SECONDS)
            await publisher.close()

    app = FastAPI(title="longrun processor", version="0.1.0", lifespan=lifespan)
    install_problem_handlers(app)
    tracing.instrument(app, settings, "longrun-processor")
    app.state.push_verifier = oidc.push_verifier(settings)

    @app.exception_handler(RequestValidationError)
    async def not_an_envelope(_: Request, exc: Exception) -> JSONResponse:
        return problem_response(400, "NOT_A_PUSH_ENVELOPE", "The body is not a Pub/Sub push.")

    app.include_router(push.router)
    app.include_router(tasks.router)

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """The process is alive; touches nothing else."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz(request: Request) -> dict[str, str]:
        """Firestore and Pub/Sub both answer; otherwise 503."""
        runtime: Runtime = request.app.state.runtime
        try:
            async with asyncio.timeout(5):
                await asyncio.gather(runtime.store.ping(), runtime.publisher.ping())
        except Exception:
            raise Unavailable("Firestore or Pub/Sub is not reachable.", code="NOT_READY") from None
        return {"status": "ready"}

    return app
