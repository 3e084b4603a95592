"""The public API: accept jobs, record them, publish them, and answer at once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from google.cloud import firestore

from jobs import tracing
from jobs.logs import configure_logging
from jobs.problems import install_problem_handlers
from jobs.publisher import StagePublisher
from jobs.settings import Settings
from jobs.storage import Storage
from jobs.store import JobStore, firestore_client
from service.deps import ServiceState
from service.routes import jobs, meta, uploads, web


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the API app; clients are made in its lifespan, so importing this touches nothing."""
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.project_id)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        client = firestore_client(settings)
        publisher = StagePublisher(settings)
        app.state.longrun = ServiceState(
            settings=settings,
            store=JobStore(client, settings),
            publisher=publisher,
            storage=Storage(settings),
            listener=firestore.Client(project=settings.project_id),
        )
        try:
            yield
        finally:
            await publisher.close()

    app = FastAPI(
        title="longrun",
        summary="Run long media and AI analysis jobs; watch them live.",
        version="0.1.0",
        lifespan=lifespan,
    )
    install_problem_handlers(app)
    tracing.instrument(app, settings, "longrun-service")
    app.include_router(jobs.router)
    app.include_router(uploads.router)
    app.include_router(meta.router)
    app.include_router(web.router)
    web.mount_page(app, settings)
    return app
