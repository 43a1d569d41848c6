"""Amplitude: send events through the HTTP V2 API, in batches.

Vendor docs used: the HTTP V2 API (endpoints, EU residency, upload limits, event fields,
``insert_id`` deduplication, ``options.min_id_length``, the 200/400/413/429/5xx responses),
https://amplitude.com/docs/apis/analytics/http-v2; batching and retries (up to 2,000 events per
request; after a 400 listing rejected events, resend the others),
https://amplitude.com/docs/apis/analytics/http-api-batching-retries; throttling over 30-second
windows, https://amplitude.com/docs/apis/analytics/batch-event-upload.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from sluice.connectors.batching import json_entry, pack, sent_positions, with_rejected
from sluice.connectors.definition import (
    ActionInput,
    ActionType,
    Batching,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
    HttpResponse,
    Outcome,
    Resource,
    classify_status,
    parse_retry_after,
)
from sluice.connectors.helpers import (
    JSON_CONTENT_TYPE,
    as_text,
    dump_json,
    is_blank,
    map_param,
    require_text,
)
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DEFAULT_BASE_URL = "https://api2.amplitude.com"
MAX_EVENTS = 2000  # events per request
MAX_BYTES = 1_000_000  # requests must stay under 1 MB (413 above)
DEFAULT_MIN_ID_LENGTH = 5
THROTTLE_WAIT = 30.0  # Amplitude measures event rates over 30-second windows
# Optional parameters copied to the event as they are: parameter -> Amplitude field.
OPTIONAL_FIELDS = {
    "ip": "ip",
    "platform": "platform",
    "app_version": "app_version",
    "language": "language",
    "country": "country",
    "session_id": "session_id",
    "price": "price",
    "quantity": "quantity",
    "revenue": "revenue",
    "product_id": "productId",
    "revenue_type": "revenueType",
}
# Parts of a 400 answer that name events by their index in the request.
PER_EVENT_PROBLEMS = {
    "events_with_invalid_fields": "invalid",
    "events_with_missing_fields": "missing",
    "events_with_invalid_id_lengths": "too short",
}


def _min_id_length(config: Mapping[str, Any]) -> int:
    value: Any = config.get("min_id_length")
    try:
        return DEFAULT_MIN_ID_LENGTH if is_blank(value) else max(1, int(value))
    except (TypeError, ValueError):
        raise FatalDelivery("mapping", "min_id_length must be a whole number") from None


def _epoch_ms(value: Any, parameter: str) -> int:
    """Milliseconds since the epoch from epoch seconds or milliseconds, or ISO 8601 text."""
    if isinstance(value, str):
        try:
            value = float(value)  # a string parameter: mapped numbers arrive as text
        except ValueError:
            pass
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value if value > 1e11 else value * 1000)
    text = as_text(value, parameter).strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MappingError(parameter, "must be epoch milliseconds or an ISO 8601 time") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _identifier(value: Any, name: str, min_length: int) -> str | None:
    if is_blank(value):
        return None
    text = as_text(value, name).strip()
    if len(text) < min_length:
        raise MappingError(name, f"must be at least {min_length} characters long for Amplitude")
    return text


def _event(event: ActionInput, min_length: int) -> dict[str, Any]:
    params = event.params
    user_id = _identifier(params.get("user_id"), "user_id", min_length)
    device_id = _identifier(params.get("device_id"), "device_id", min_length)
    if device_id is not None and not device_id.strip("0-"):
        device_id = None  # an all-zero advertising ID: Amplitude refuses it
    if user_id is None and device_id is None:
        # Tealium's visitor ID is a stable device identifier for anonymous visitors.
        visitor = event.data.get("tealium_visitor_id")
        device_id = _identifier(visitor, "device_id", min_length)
    if user_id is None and device_id is None:
        raise MappingError("user_id", "map a user ID or a device ID; Amplitude needs one")
    body: dict[str, Any] = {"event_type": require_text(params, "event_type").strip()}
    body.update({"user_id": user_id} if user_id else {})
    body.update({"device_id": device_id} if device_id else {})
    when = params.get("time")
    when = event.data.get("received_at") if is_blank(when) else when
    body["time"] = (
        _epoch_ms(when, "time") if not is_blank(when) else int(datetime.now(UTC).timestamp() * 1000)
    )
    # Amplitude drops a second event with the same insert_id for 7 days: retries are safe.
    body["insert_id"] = event.idempotency_key
    for name in ("event_properties", "user_properties"):
        values = map_param(params, name)
        if values:
            body[name] = values
    for name, key in OPTIONAL_FIELDS.items():
        if not is_blank(params.get(name)):
            body[key] = params[name]
    return body


def build_send_events(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    key = ctx.config.get("api_key")
    if is_blank(key):
        raise FatalDelivery("auth", "Amplitude: no API key is configured")
    envelope: dict[str, Any] = {"api_key": str(key).strip()}
    if not is_blank(ctx.config.get("min_id_length")):
        envelope["options"] = {"min_id_length": _min_id_length(ctx.config)}
    min_length = _min_id_length(ctx.config)
    overhead = len(dump_json({**envelope, "events": []}, "body"))
    url = f"{(ctx.base_url or DEFAULT_BASE_URL).rstrip('/')}/2/httpapi"
    batches = pack(
        inputs,
        lambda event: json_entry(_event(event, min_length), "event_properties"),
        max_count=MAX_EVENTS,
        max_bytes=MAX_BYTES,
        overhead=overhead,
        too_big=("event_properties", "the event is larger than Amplitude's 1 MB"),
    )
    return [
        batch.request(
            url,
            {"Content-Type": JSON_CONTENT_TYPE},
            dump_json({**envelope, "events": batch.entries}, "body"),
        )
        for batch in batches
    ]


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _bad_events(doc: Mapping[str, Any]) -> dict[int, list[str]]:
    """Index in the request -> what Amplitude said is wrong with that event."""
    problems: dict[int, list[str]] = {}
    for key, verdict in PER_EVENT_PROBLEMS.items():
        named = doc.get(key)
        for field_name, indexes in (named or {}).items() if isinstance(named, dict) else ():
            for index in indexes if isinstance(indexes, list) else ():
                if isinstance(index, int):
                    problems.setdefault(index, []).append(f"{field_name} {verdict}")
    for index in doc.get("silenced_events") or []:
        if isinstance(index, int):
            problems.setdefault(index, []).append("device silenced")
    return problems


def _judge(response: HttpResponse, sent: int) -> Outcome | list[Outcome]:
    """The outcome of the events in the body (``sent`` of them), in body order."""
    status = response.status
    if 200 <= status < 300:
        return None
    doc = _json(response.body)
    error = str(doc.get("error") or f"HTTP {status}")
    message = f"Amplitude: {error}"
    if doc.get("missing_field"):
        message += f" (missing field: {doc['missing_field']})"
    key_problem = doc.get("missing_field") == "api_key" or "api key" in error.lower()
    if status in (401, 403) or (status == 400 and key_problem):
        return FatalDelivery("auth", f"{message}; check the API key", status_code=status)
    if status == 400:
        bad = _bad_events(doc)
        if not bad:
            return FatalDelivery("http_4xx", message, status_code=status)
        # Amplitude refuses the whole request: the sound events go again without the others.
        again = "Amplitude refused the batch because of other events in it; sending again"
        return [
            FatalDelivery("http_4xx", f"{message}: {', '.join(bad[i])}", status_code=status)
            if i in bad
            else RetryableDelivery("http_4xx", again, status_code=status)
            for i in range(sent)
        ]
    if status == 413:
        hint = "lower the action's maximum batch size"
        return FatalDelivery("http_4xx", f"{message}; {hint}", status_code=status)
    if status == 429:
        throttled = len(doc.get("throttled_users") or {}) + len(doc.get("throttled_devices") or {})
        text = f"{message} ({throttled} users or devices throttled)" if throttled else message
        wait = parse_retry_after(response.headers.get("retry-after"))
        wait = THROTTLE_WAIT if wait is None else wait
        return RetryableDelivery("rate_limit", text, status_code=status, retry_after=wait)
    outcome = classify_status(response)
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category, message, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category if outcome else "http_4xx", message, status_code=status)


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return with_rejected(request, _judge(response, len(sent_positions(request))))


EVENT, USER, REVENUE, CONTEXT, BATCH = "Event", "User", "Revenue", "Context", "Batching"

SEND_EVENTS = ActionType(
    id="send_events",
    name="Send Events",
    description=(
        "Send events to Amplitude through the HTTP V2 API, batched up to 2,000 per request, "
        "deduplicated by insert_id."
    ),
    parameters=(
        Field("event_type", "Event type", required=True, group=EVENT, help="E.g. Order Completed."),
        Field("event_properties", "Event properties", "map", group=EVENT, help="Event attributes."),
        Field(
            "time",
            "Event time",
            group=EVENT,
            default="",
            help="Epoch milliseconds or ISO 8601; by default when Sluice received the event.",
        ),
        Field("user_id", "User ID", group=USER, help="Your ID for a known user (5+ characters)."),
        Field(
            "device_id",
            "Device ID",
            group=USER,
            help="The device's ID; without user and device ID, the Tealium visitor ID is used.",
        ),
        Field("user_properties", "User properties", "map", group=USER, help="Attributes to set."),
        Field("revenue", "Revenue", "number", group=REVENUE, help="Revenue (negative: refund)."),
        Field("price", "Price", "number", group=REVENUE, help="Unit price of the product."),
        Field("quantity", "Quantity", "integer", group=REVENUE, help="Units bought."),
        Field("product_id", "Product ID", group=REVENUE, help="The product's identifier."),
        Field("revenue_type", "Revenue type", group=REVENUE, help="E.g. purchase or refund."),
        Field("ip", "IP address", group=CONTEXT, help="For location (Amplitude's geo lookup)."),
        Field("platform", "Platform", group=CONTEXT, help="E.g. Web, iOS or Android."),
        Field("app_version", "App version", group=CONTEXT, help="The app's version."),
        Field("language", "Language", group=CONTEXT, help="The user's language."),
        Field("country", "Country", group=CONTEXT, help="The user's country."),
        Field("session_id", "Session ID", "integer", group=CONTEXT, help="Session start in ms."),
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group=BATCH,
            help=f"Events per request, at most {MAX_EVENTS}; Starter plans: Amplitude advises 10.",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (s)",
            "number",
            group=BATCH,
            help="Send a batch at the latest this long after its first event (at most 10).",
        ),
    ),
    build=build_send_events,
    classify=classify,
    consent_categories=("analytics",),
    batching=Batching(max_count=MAX_EVENTS, max_bytes=MAX_BYTES, max_age_seconds=10),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#1e61f0"/>
  <text x="32" y="44" text-anchor="middle" font-family="Helvetica, Arial, sans-serif"
        font-size="34" font-weight="700" fill="#ffffff">A</text>
</svg>
"""

CONNECTOR = ConnectorType(
    id="amplitude",
    name="Amplitude",
    description="Send events, user properties and revenue to Amplitude product analytics.",
    configuration=(
        Field(
            "api_key",
            "API key",
            required=True,
            secret=True,
            group="Credentials",
            help="The project's API key, from Organization settings > Projects.",
        ),
        Field(
            "base_url",
            "API endpoint",
            "url",
            default=DEFAULT_BASE_URL,
            group="Credentials",
            help=(
                "https://api2.amplitude.com for the standard server; for a project with EU "
                "data residency use https://api.eu.amplitude.com."
            ),
        ),
        Field(
            "min_id_length",
            "Minimum ID length",
            "integer",
            group="Advanced",
            help="Accept user and device IDs this short (Amplitude's default minimum is 5).",
        ),
    ),
    actions=(SEND_EVENTS,),
    what_you_need=(
        "An Amplitude project and its API key.",
        "Whether the project keeps its data in the EU (it then uses the EU endpoint).",
        "A user ID or device ID for every event (the Tealium visitor ID serves as a device ID).",
    ),
    resources=(
        Resource("HTTP V2 API", "https://amplitude.com/docs/apis/analytics/http-v2"),
        Resource(
            "Find your API credentials",
            "https://amplitude.com/docs/apis/authentication",
        ),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
