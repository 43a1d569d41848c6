"""``create_app``: the one place where a Sluice process is assembled."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.middleware.sessions import SessionMiddleware

from sluice import __version__, ui
from sluice.api import errors as api_errors
from sluice.api.routes import ROUTERS
from sluice.collect.routes import PATHS as COLLECT_PATHS
from sluice.collect.routes import CollectApp
from sluice.errors import ConfigurationError
from sluice.services import Services
from sluice.settings import Settings
from sluice.storage import migrate

log = logging.getLogger("sluice")

API_DESCRIPTION = """\
The management API of Sluice: profiles, data sources, event feeds, connectors and their
actions, publishing and versions, reports and the error log.

Every request needs `Authorization: Bearer <token>` (create one with
`sluice tokens create`). Errors are always `{"error": "...", "details": [...]}`.
"""


def prepare_database(services: Services) -> None:
    """SQLite is migrated in place; PostgreSQL must have been migrated with ``sluice migrate``."""
    services.db.check()
    if services.db.is_sqlite:
        if not migrate.is_current(services.db):
            migrate.upgrade(services.db)
    elif not migrate.is_current(services.db):
        raise ConfigurationError("the database schema is behind: run `sluice migrate` first")


class SluiceApp(FastAPI):
    """FastAPI for the management API and UI; the collect API's paths skip it entirely."""

    collect: CollectApp

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] in COLLECT_PATHS:
            await self.collect(scope, receive, send)
            return
        await super().__call__(scope, receive, send)


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    if services is None:
        services = Services.open(settings or Settings.from_env())
    settings = services.settings
    prepare_database(services)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        from sluice.pipeline import Pipeline

        pipeline = Pipeline(services)
        services.pipeline = pipeline
        await pipeline.start(run_workers=settings.run_workers)
        demo_stream = None
        if settings.demo:
            from sluice.demo import stream_events

            demo_stream = asyncio.create_task(stream_events(services))
        try:
            yield
        finally:
            if demo_stream is not None:
                demo_stream.cancel()
            await pipeline.stop()
            services.pipeline = None

    app = SluiceApp(
        title="Sluice",
        version=__version__,
        description=API_DESCRIPTION,
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.services = services
    app.add_middleware(
        SessionMiddleware,
        secret_key=services.box.derive("session"),
        session_cookie="sluice_session",
        same_site="lax",
        https_only=False,
        max_age=12 * 3600,
    )
    api_errors.install(app)
    for router in ROUTERS:
        app.include_router(router, prefix="/api/v1")
    app.collect = CollectApp(services)
    ui.install(app)
    if settings.demo:
        from sluice.demo import ROUTES as DEMO_ROUTES

        app.router.routes.extend(DEMO_ROUTES)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> JSONResponse:
        return JSONResponse({"status": "ok"})

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> JSONResponse:
        pipeline = services.pipeline
        if pipeline is None or not pipeline.ready:
            return JSONResponse({"status": "starting"}, status_code=503)
        return JSONResponse({"status": "ready"})

    @app.get("/metrics", include_in_schema=False)
    def metrics() -> PlainTextResponse:
        from sluice.metrics import render

        body, content_type = render()
        return PlainTextResponse(body, media_type=content_type)

    return app
