"""The one JSON error shape of the API: ``{"error": "...", "details": [...]}``."""

from __future__ import annotations

import logging
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from sluice.errors import ApiError

log = logging.getLogger("sluice.api")


def error_response(status: int, message: str, details: list[Any] | None = None) -> JSONResponse:
    return JSONResponse({"error": message, "details": details or []}, status_code=status)


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out or "body"


async def _api_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status_code, exc.message, exc.details)


async def _validation_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    details = []
    for err in exc.errors():
        field = _field_name(tuple(err.get("loc", ())))
        details.append({"field": field, "message": err.get("msg", "invalid")})
    if details:
        first = details[0]
        message = f"{first['field']}: {first['message']}"
    else:
        message = "invalid request"
    return error_response(422, message, details)


async def _http_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    message = exc.detail if isinstance(exc.detail, str) else "error"
    if exc.status_code == 404 and message == "Not Found":
        message = "not found"
    elif exc.status_code == 405:
        message = "method not allowed"
    response = error_response(exc.status_code, message)
    if exc.headers:
        response.headers.update(exc.headers)
    return response


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error")


async def _unstorable(request: Request, exc: Exception) -> Response:
    # orjson stores every JSON value; the one kind of value a request can carry that it
    # refuses is a whole number beyond 64 bits (a value of a mapping, a condition, a rule).
    # Its error is a TypeError: any other goes on to the 500 it was.
    if "Integer exceeds 64-bit range" in str(exc):
        return error_response(
            422,
            "a number in the request is too large: whole numbers must lie between "
            "-9223372036854775808 and 18446744073709551615",
            [{"field": "body", "message": "number too large"}],
        )
    return await _unexpected(request, exc)


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(orjson.JSONEncodeError, _unstorable)
    app.add_exception_handler(Exception, _unexpected)
