"""HTTP endpoints of the collect API: ``POST /event``, ``GET /event``, ``POST /bulk-event``.

Plain Starlette endpoints (not FastAPI) because this is the hot path: every request is
read with a size cap, validated, and its events handed to the group-commit writer; the
answer goes out only after the commit.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from typing import TYPE_CHECKING, Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice import metrics
from sluice.collect.validate import (
    CollectError,
    check_event,
    pairs_to_event,
    parse_form,
    parse_json,
)
from sluice.ids import new_event_id
from sluice.storage.writer import StorageUnavailable
from sluice.timeutil import iso

if TYPE_CHECKING:
    from sluice.engine.compiled import LiveProfile
    from sluice.pipeline import Pipeline

log = logging.getLogger("sluice.collect")

GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
_JSON = "application/json"


def _error(
    status: int, message: str, retry_after: int | None = None, body: bool = True
) -> Response:
    headers = {"X-Error": message[:300].encode("ascii", "replace").decode()}
    if retry_after is not None:
        headers["Retry-After"] = str(retry_after)
    if not body:
        return Response(status_code=status, headers=headers)
    return Response(
        orjson.dumps({"error": message}), status_code=status, headers=headers, media_type=_JSON
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            if int(declared) > limit:
                raise CollectError(413, f"the body is larger than {limit} bytes")
        except ValueError as exc:
            raise CollectError(400, "invalid Content-Length") from exc
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise CollectError(413, f"the body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _parse_body(request: Request, body: bytes) -> Any:
    ctype = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if ctype == "application/x-www-form-urlencoded":
        return parse_form(body)
    if not body.strip():
        raise CollectError(400, "the body is empty: send a JSON object")
    return parse_json(body)


def _pipeline(request: Request) -> Pipeline:
    pipeline: Pipeline | None = request.app.state.services.pipeline
    if pipeline is None or not pipeline.ready:
        raise CollectError(503, "Sluice is starting", retry_after=1)
    return pipeline


async def _accept(request: Request, raw_events: list[dict[str, Any]]) -> list[str]:
    return await accept_events(_pipeline(request), raw_events, request.headers.get("authorization"))


async def accept_events(
    pipeline: Pipeline, raw_events: list[dict[str, Any]], authorization: str | None = None
) -> list[str]:
    """Check account, profile, data source, token, rate and queue; store; return ids."""
    settings = pipeline.services.settings
    resolved: list[tuple[dict[str, Any], LiveProfile]] = []
    groups: dict[str, tuple[LiveProfile, int]] = {}
    for raw in raw_events:
        check_event(raw, settings.max_depth)
        account = raw.get("tealium_account")
        if not account or not isinstance(account, str):
            raise CollectError(400, "tealium_account is required")
        profile_name = raw.get("tealium_profile") or "main"
        if not isinstance(profile_name, str):
            raise CollectError(400, "tealium_profile must be a string")
        profile = await pipeline.lookup_profile(account, profile_name)
        if profile is None:
            raise CollectError(400, f"unknown account/profile {account}/{profile_name}")
        source = raw.get("tealium_datasource")
        if source not in (None, "") and not await pipeline.known_data_source(profile, source):
            raise CollectError(400, f"unknown data source key {str(source)[:100]!r}")
        resolved.append((raw, profile))
        count = groups.get(profile.id, (profile, 0))[1]
        groups[profile.id] = (profile, count + 1)
    for profile, count in groups.values():
        token_needed = profile.settings.get("collect_token_required")
        if token_needed and not await pipeline.collect_token_ok(authorization, profile):
            raise CollectError(401, "this profile needs Authorization: Bearer <token>")
        wait = pipeline.rate_limit(profile, count)
        if wait is not None:
            raise CollectError(429, "over the profile's rate limit", retry_after=math.ceil(wait))
    if pipeline.queue_full(len(resolved)):
        raise CollectError(503, "the queue is full; retry later", retry_after=1)
    received = time.time()
    received_iso = iso(received)
    ids: list[str] = []
    rows: list[dict[str, Any]] = []
    for raw, profile in resolved:
        event_id = new_event_id()
        ids.append(event_id)
        raw["event_id"] = event_id
        raw["received_at"] = received_iso
        visitor = raw.get("tealium_visitor_id")
        rows.append(
            {
                "id": event_id,
                "profile_id": profile.id,
                "received_at": received,
                "payload": orjson.dumps(raw).decode(),
                "visitor_id": str(visitor)[:200] if visitor not in (None, "") else None,
                "routed": False,
            }
        )
    try:
        await pipeline.store_events(rows)
    except StorageUnavailable as exc:
        log.warning("refused %d events: %s", len(rows), exc)
        raise CollectError(
            503, "Sluice cannot store events now; retry later", retry_after=5
        ) from exc
    metrics.EVENTS_ACCEPTED.inc(len(rows))
    return ids


def _ok(ids: list[str]) -> Response:
    return Response(orjson.dumps({"accepted": len(ids), "event_ids": ids}), media_type=_JSON)


async def post_event(request: Request) -> Response:
    try:
        settings = request.app.state.services.settings
        body = await _read_body(request, settings.max_event_bytes)
        event = _parse_body(request, body)
        if not isinstance(event, dict):
            raise CollectError(400, "the event must be a JSON object")
        return _ok(await _accept(request, [event]))
    except CollectError as exc:
        metrics.EVENTS_REFUSED.labels(str(exc.status)).inc()
        return _error(exc.status, exc.message, exc.retry_after)


async def get_event(request: Request) -> Response:
    try:
        event = pairs_to_event(list(request.query_params.multi_items()))
        await _accept(request, [event])
        return Response(GIF, media_type="image/gif", headers={"Cache-Control": "no-store"})
    except CollectError as exc:
        metrics.EVENTS_REFUSED.labels(str(exc.status)).inc()
        return _error(exc.status, exc.message, exc.retry_after, body=False)


async def post_bulk(request: Request) -> Response:
    try:
        settings = request.app.state.services.settings
        body = await _read_body(request, settings.max_bulk_bytes)
        document = _parse_body(request, body)
        if not isinstance(document, dict):
            raise CollectError(400, "the body must be a JSON object with an events list")
        events = document.get("events")
        if not isinstance(events, list):
            raise CollectError(400, 'events is missing: send {"shared": {...}, "events": [...]}')
        if len(events) > settings.max_bulk_events:
            raise CollectError(400, f"more than {settings.max_bulk_events} events in one request")
        if not events:
            raise CollectError(400, "events is empty")
        shared = document.get("shared") or {}
        if not isinstance(shared, dict):
            raise CollectError(400, "shared must be a JSON object")
        merged = []
        for index, event in enumerate(events):
            if not isinstance(event, dict):
                raise CollectError(400, f"events[{index}] must be a JSON object")
            merged.append({**shared, **event})
        return _ok(await _accept(request, merged))
    except CollectError as exc:
        metrics.EVENTS_REFUSED.labels(str(exc.status)).inc()
        return _error(exc.status, exc.message, exc.retry_after)


ROUTES = [
    Route("/event", post_event, methods=["POST"]),
    Route("/event", get_event, methods=["GET"]),
    Route("/bulk-event", post_bulk, methods=["POST"]),
]
