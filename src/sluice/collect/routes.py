"""The collect API over raw ASGI: ``POST /event``, ``GET /event``, ``POST /bulk-event``.

This is the hot path, so it bypasses the framework: ``SluiceApp`` hands these paths
straight to :class:`CollectApp` (no routing table, no middleware), which reads the body
with a size cap, validates, hands the events to the group-commit writer and answers only
after the commit.
"""

from __future__ import annotations

import base64
import logging
import math
import time
from collections.abc import Awaitable, Callable, MutableMapping
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import orjson

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
    from sluice.services import Services

log = logging.getLogger("sluice.collect")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

PATHS = frozenset(("/event", "/bulk-event"))
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
_JSON_HEADERS = [(b"content-type", b"application/json")]
_GIF_HEADERS = [(b"content-type", b"image/gif"), (b"cache-control", b"no-store")]


async def accept_events(
    pipeline: Pipeline,
    raw_events: list[dict[str, Any]],
    authorization: str | bytes | None = None,
) -> list[str]:
    """Check account, profile, data source, token, rate and queue; store; return ids."""
    settings = pipeline.services.settings
    profiles = pipeline.config.profiles
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
        profile = profiles.get((account, profile_name)) or await pipeline.lookup_profile(
            account, profile_name
        )
        if profile is None:
            raise CollectError(400, f"unknown account/profile {account}/{profile_name}")
        source = raw.get("tealium_datasource")
        if (
            source not in (None, "")
            and source not in profile.data_source_keys
            and not await pipeline.known_data_source(profile, source)
        ):
            raise CollectError(400, f"unknown data source key {str(source)[:100]!r}")
        resolved.append((raw, profile))
        count = groups.get(profile.id, (profile, 0))[1]
        groups[profile.id] = (profile, count + 1)
    for profile, count in groups.values():
        token_needed = profile.settings.get("collect_token_required")
        header = (
            authorization.decode("latin-1") if isinstance(authorization, bytes) else authorization
        )
        if token_needed and not await pipeline.collect_token_ok(header, profile):
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


class CollectApp:
    """The three collect endpoints as one small ASGI application."""

    def __init__(self, services: Services) -> None:
        self.services = services

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        path = scope["path"]
        is_get = path == "/event" and method in ("GET", "HEAD")
        try:
            if is_get:
                await self._get_event(scope, send)
            elif method != "POST":
                raise CollectError(405, f"use POST (or GET for /event), not {method}")
            elif path == "/event":
                await self._post_event(scope, receive, send)
            else:
                await self._post_bulk(scope, receive, send)
        except CollectError as exc:
            metrics.EVENTS_REFUSED.labels(str(exc.status)).inc()
            await _error(send, exc.status, exc.message, exc.retry_after, body=not is_get)
        except Exception:  # never a traceback to a client, never a dead server
            log.exception("collect request failed")
            await _error(send, 500, "internal error", body=not is_get)

    def _pipeline(self) -> Pipeline:
        pipeline = self.services.pipeline
        if pipeline is None or not pipeline.ready:
            raise CollectError(503, "Sluice is starting", retry_after=1)
        return pipeline

    async def _post_event(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        body = await _read_body(headers, receive, self.services.settings.max_event_bytes)
        event = _parse_body(headers, body)
        if not isinstance(event, dict):
            raise CollectError(400, "the event must be a JSON object")
        ids = await accept_events(self._pipeline(), [event], headers.get(b"authorization"))
        await _ok(send, ids)

    async def _get_event(self, scope: Scope, send: Send) -> None:
        query = scope.get("query_string", b"").decode("latin-1")
        event = pairs_to_event(parse_qsl(query, keep_blank_values=True))
        headers = _headers(scope)
        await accept_events(self._pipeline(), [event], headers.get(b"authorization"))
        await send({"type": "http.response.start", "status": 200, "headers": _GIF_HEADERS})
        await send({"type": "http.response.body", "body": GIF})

    async def _post_bulk(self, scope: Scope, receive: Receive, send: Send) -> None:
        settings = self.services.settings
        headers = _headers(scope)
        body = await _read_body(headers, receive, settings.max_bulk_bytes)
        document = _parse_body(headers, body)
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
        ids = await accept_events(self._pipeline(), merged, headers.get(b"authorization"))
        await _ok(send, ids)


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return {name.lower(): value for name, value in scope["headers"]}


async def _read_body(headers: dict[bytes, bytes], receive: Receive, limit: int) -> bytes:
    declared = headers.get(b"content-length")
    if declared is not None:
        try:
            too_big = int(declared) > limit
        except ValueError as exc:
            raise CollectError(400, "invalid Content-Length") from exc
        if too_big:
            raise CollectError(413, f"the body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise CollectError(400, "the client went away")
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise CollectError(413, f"the body is larger than {limit} bytes")
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _parse_body(headers: dict[bytes, bytes], body: bytes) -> Any:
    ctype = headers.get(b"content-type", b"").split(b";", 1)[0].strip().lower()
    if ctype == b"application/x-www-form-urlencoded":
        return parse_form(body)
    if not body.strip():
        raise CollectError(400, "the body is empty: send a JSON object")
    return parse_json(body)


async def _ok(send: Send, ids: list[str]) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": _JSON_HEADERS})
    await send(
        {
            "type": "http.response.body",
            "body": orjson.dumps({"accepted": len(ids), "event_ids": ids}),
        }
    )


async def _error(
    send: Send, status: int, message: str, retry_after: int | None = None, body: bool = True
) -> None:
    headers = [(b"x-error", message[:300].encode("ascii", "replace"))]
    if retry_after is not None:
        headers.append((b"retry-after", str(retry_after).encode()))
    if body:
        headers.extend(_JSON_HEADERS)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send(
        {"type": "http.response.body", "body": orjson.dumps({"error": message}) if body else b""}
    )
