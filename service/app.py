"""The public API: accept jobs, record them, publish them, and answer at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from google.cloud import firestore

from jobs.cloud.publisher import StagePublisher
from jobs.cloud.storage import Storage
from jobs.cloud.store import JobStore, firestore_client
from jobs.contract.settings import Settings
from jobs.telemetry import tracing
from jobs.telemetry.logs import configure_logging
from jobs.telemetry.problems import install_problem_handlers
from service.auth import Authenticator, check_auth_configuration
from service.deps import ServiceState
from service.limits import BodySizeLimit
from service.openapi import install_openapi
from service.routes import jobs, meta, uploads, web


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API app; clients are made in its lifespan, so importing this touches nothing."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.project_id)
    check_auth_configuration(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = firestore_client(settings)
        publisher = StagePublisher(settings)
        authenticator = Authenticator(settings)
        app.state.longrun = ServiceState(
            settings=settings,
            store=JobStore(client, settings),
            publisher=publisher,
            storage=Storage(settings),
            listener=firestore.Client(project=settings.project_id),
            authenticator=authenticator,
        )
        try:
            yield
        finally:
            await publisher.close()
            authenticator.close()

    app = FastAPI(
        title="longrun",
        summary="Run long media and AI analysis jobs; watch them live.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    app.add_middleware(BodySizeLimit, max_bytes=settings.max_body_bytes)
    # Clients authenticate with a bearer token, never cookies: no credentials mode, so even a
    # wildcard origin cannot make a browser send a user's credentials to us on a page's behalf.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.allowed_origins,
        allow_credentials=False,
        allow_methods=["GET", "POST"],
        allow_headers=[
            "Authorization", "Content-Type", "Idempotency-Key", "If-None-Match",
            "Last-Event-ID", "traceparent",
        ],
        expose_headers=["ETag", "Retry-After", "Location"],
        max_age=600,
    )  # fmt: skip
    tracing.instrument(app, settings, "longrun-service")
    app.include_router(jobs.router)
    app.include_router(uploads.router)
    app.include_router(meta.router)
    app.include_router(web.router)
    web.mount_page(app, settings)
    install_openapi(app)
    return app
