"""The web interface: server-rendered pages over the configuration and reporting services.

:func:`install` adds the page routes, the static files and the HTML error page to an app.
Pages live in one module per group (``pages_*.py``); templates and static files ship inside
the package, so a plain ``pip install`` serves the whole interface.
"""

from __future__ import annotations

import inspect
from pathlib import Path

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

from sluice.ui.render import error_page, wants_html
from sluice.ui.routes import ROUTERS

__all__ = ["install"]

STATIC = Path(__file__).parent / "static"


def install(app: FastAPI) -> None:
    """Mount the pages and ``/static``; unknown pages get the HTML error page."""
    for router in ROUTERS:
        app.include_router(router, include_in_schema=False)
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")
    previous = app.exception_handlers.get(StarletteHTTPException)

    async def http_error(request: Request, exc: Exception) -> Response:
        if wants_html(request) and isinstance(exc, StarletteHTTPException):
            return error_page(request, exc.status_code, str(exc.detail))
        if previous is None:
            raise exc
        answer = previous(request, exc)
        if inspect.isawaitable(answer):
            answer = await answer
        assert isinstance(answer, Response)
        return answer

    app.add_exception_handler(StarletteHTTPException, http_error)
