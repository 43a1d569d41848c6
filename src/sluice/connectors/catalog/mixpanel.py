"""Mixpanel: import events through the Ingestion API's ``/import`` endpoint, in batches.

Vendor docs used: Import Events (request format, the 2,000 events and 10 MB per request
limits, service account authentication with ``project_id``, ``strict=1`` validation,
``$insert_id``, the EU and India endpoints), https://docs.mixpanel.com/reference/import-events;
the 400 answer with ``failed_records``,
https://docs.mixpanel.com/troubleshooting/errors/400-bad-request; service accounts,
https://docs.mixpanel.com/reference/service-accounts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from sluice.connectors.batching import pack, sent_positions, with_rejected
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
)
from sluice.connectors.helpers import (
    JSON_CONTENT_TYPE,
    as_text,
    basic_auth,
    dump_json,
    is_blank,
    map_param,
    require_text,
    with_query,
)
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DEFAULT_BASE_URL = "https://api.mixpanel.com"
MAX_EVENTS = 2000  # events per /import request
MAX_BYTES = 10_000_000  # uncompressed JSON per /import request
MAX_EVENT_BYTES = 1_000_000  # one event must be smaller than 1 MB
MAX_PROPERTIES = 255  # properties per event


def insert_id(idempotency_key: str) -> str:
    """A stable ``$insert_id``: Mixpanel takes at most 36 letters, digits and dashes."""
    return hashlib.sha256(idempotency_key.encode()).hexdigest()[:32]


def _epoch_ms(value: Any) -> int:
    """Milliseconds since the epoch from epoch seconds or milliseconds, or ISO 8601 text."""
    if isinstance(value, str):
        try:
            value = float(value)  # a string parameter: mapped numbers arrive as text
        except ValueError:
            pass
    if isinstance(value, int | float) and not isinstance(value, bool):
        return int(value if value > 1e11 else value * 1000)
    text = as_text(value, "time").strip()
    try:
        moment = datetime.fromisoformat(text)
    except ValueError as exc:
        raise MappingError("time", "must be epoch seconds or milliseconds, or ISO 8601") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)


def _event(event: ActionInput) -> dict[str, Any]:
    params = event.params
    when = params.get("time")
    when = event.data.get("received_at") if is_blank(when) else when
    distinct_id = params.get("distinct_id")
    if is_blank(distinct_id):
        # Anonymous visitors: the Tealium visitor ID; "" marks an event with no user at all.
        distinct_id = event.data.get("tealium_visitor_id") or ""
    properties: dict[str, Any] = map_param(params, "properties")
    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    properties["time"] = now_ms if is_blank(when) else _epoch_ms(when)
    properties["distinct_id"] = as_text(distinct_id, "distinct_id").strip()
    # Mixpanel drops an event whose $insert_id it has already seen: retries are safe.
    properties["$insert_id"] = insert_id(event.idempotency_key)
    for name, key in (("user_id", "$user_id"), ("device_id", "$device_id"), ("ip", "ip")):
        if not is_blank(params.get(name)):
            properties[key] = as_text(params[name], name).strip()
    if len(properties) > MAX_PROPERTIES:
        raise MappingError("properties", f"Mixpanel takes at most {MAX_PROPERTIES} properties")
    return {"event": require_text(params, "event_name").strip(), "properties": properties}


def _encoded(event: ActionInput) -> tuple[bytes, int]:
    """One event's JSON and its size in the request's array (a comma more)."""
    encoded = dump_json(_event(event), "properties")
    if len(encoded) >= MAX_EVENT_BYTES:
        raise MappingError("properties", "the event is larger than Mixpanel's 1 MB")
    return encoded, len(encoded) + 1


def _credentials(config: Mapping[str, Any]) -> tuple[str, str, str]:
    values = [config.get(name) for name in ("project_id", "username", "secret")]
    if any(is_blank(value) for value in values):
        message = "Mixpanel: set the project ID and the service account's username and secret"
        raise FatalDelivery("auth", message)
    project_id, username, secret = (str(value).strip() for value in values)
    return project_id, username, secret


def build_import(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    project_id, username, secret = _credentials(ctx.config)
    base = (ctx.base_url or DEFAULT_BASE_URL).rstrip("/")
    url = with_query(f"{base}/import", {"strict": "1", "project_id": project_id})
    headers = {"Content-Type": JSON_CONTENT_TYPE, "Authorization": basic_auth(username, secret)}
    return [
        batch.request(
            url,
            dict(headers),
            b"[" + b",".join(batch.entries) + b"]",
            sensitive_headers=frozenset({"authorization"}),
        )
        for batch in pack(inputs, _encoded, max_count=MAX_EVENTS, max_bytes=MAX_BYTES, overhead=2)
    ]


def _json(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _judge(response: HttpResponse, sent: int) -> Outcome | list[Outcome]:
    """The outcome of the events in the body (``sent`` of them), in body order."""
    status = response.status
    if 200 <= status < 300:
        return None
    doc = _json(response.body)
    message = f"Mixpanel: {doc.get('error') or doc.get('status') or f'HTTP {status}'}"
    if status in (401, 403):
        hint = "check the project ID and the service account (Owner or Admin of the project)"
        return FatalDelivery("auth", f"{message}; {hint}", status_code=status)
    failed = [r for r in doc.get("failed_records") or [] if isinstance(r, dict)]
    if status == 400 and failed:
        # Mixpanel imported every other event of the batch.
        problems: dict[int, list[str]] = {}
        for record in failed:
            index = record.get("index")
            if isinstance(index, int) and 0 <= index < sent:
                text = f"{record.get('field') or 'event'}: {record.get('message') or 'invalid'}"
                problems.setdefault(index, []).append(text)
        return [
            FatalDelivery(
                "http_4xx", f"Mixpanel rejected {'; '.join(problems[i])}", status_code=400
            )
            if i in problems
            else None
            for i in range(sent)
        ]
    if status == 413:
        hint = "lower the action's maximum batch size"
        return FatalDelivery("http_4xx", f"{message}; {hint}", status_code=status)
    outcome = classify_status(response)
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category, message, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category if outcome else "http_4xx", message, status_code=status)


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return with_rejected(request, _judge(response, len(sent_positions(request))))


EVENT, USER, BATCH = "Event", "User", "Batching"

IMPORT_EVENTS = ActionType(
    id="import_events",
    name="Import Events",
    description=(
        "Import events into a Mixpanel project, batched up to 2,000 per request and "
        "deduplicated by $insert_id; invalid events are reported one by one."
    ),
    parameters=(
        Field("event_name", "Event name", required=True, group=EVENT, help="E.g. Purchase."),
        Field("properties", "Properties", "map", group=EVENT, help="Event properties to send."),
        Field(
            "time",
            "Event time",
            group=EVENT,
            default="",
            help="Epoch seconds or milliseconds, or ISO 8601; by default when Sluice received it.",
        ),
        Field(
            "distinct_id",
            "Distinct ID",
            group=USER,
            help="The user; by default the Tealium visitor ID (empty: an event with no user).",
        ),
        Field("user_id", "User ID ($user_id)", group=USER, help="A known user's ID (ID merge)."),
        Field("device_id", "Device ID ($device_id)", group=USER, help="The anonymous device's ID."),
        Field("ip", "IP address", group=USER, help="For Mixpanel's geolocation of the event."),
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group=BATCH,
            help=f"Send a batch once it holds this many events (at most {MAX_EVENTS}).",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (s)",
            "number",
            group=BATCH,
            help="Send a batch at the latest this long after its first event (at most 10).",
        ),
    ),
    build=build_import,
    classify=classify,
    consent_categories=("analytics",),
    batching=Batching(max_count=MAX_EVENTS, max_bytes=MAX_BYTES, max_age_seconds=10),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#7856ff"/>
  <circle cx="20" cy="32" r="5" fill="#ffffff"/>
  <circle cx="32" cy="32" r="7" fill="#ffffff"/>
  <circle cx="46" cy="32" r="9" fill="#ffffff"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="mixpanel",
    name="Mixpanel",
    description="Import events into Mixpanel product analytics from the server side.",
    configuration=(
        Field(
            "project_id",
            "Project ID",
            required=True,
            group="Credentials",
            help="From Project settings > Overview.",
        ),
        Field(
            "username",
            "Service account username",
            required=True,
            group="Credentials",
            help="A service account with the Owner or Admin role on the project.",
        ),
        Field(
            "secret",
            "Service account secret",
            required=True,
            secret=True,
            group="Credentials",
            help="The secret shown once when the service account was created.",
        ),
        Field(
            "base_url",
            "API endpoint",
            "url",
            default=DEFAULT_BASE_URL,
            group="Credentials",
            help=(
                "https://api.mixpanel.com for US data residency; https://api-eu.mixpanel.com "
                "for a project in the EU, https://api-in.mixpanel.com for one in India."
            ),
        ),
    ),
    actions=(IMPORT_EVENTS,),
    what_you_need=(
        "A Mixpanel project and its project ID.",
        "A service account (Organization settings > Service accounts) with the Owner or Admin "
        "role on that project, and its secret.",
        "The project's data residency (US, EU or India), which decides the endpoint.",
    ),
    resources=(
        Resource("Import Events", "https://docs.mixpanel.com/reference/import-events"),
        Resource("Service accounts", "https://docs.mixpanel.com/reference/service-accounts"),
        Resource(
            "400 Bad Request from /import",
            "https://docs.mixpanel.com/troubleshooting/errors/400-bad-request",
        ),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
