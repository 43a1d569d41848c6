"""Segment: send Track and Identify calls to a Segment HTTP API source, in batches.

Vendor docs used: the HTTP Tracking API
https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/ (basic auth
with the write key and an empty password, ``/v1/batch``, 500 KB per batch, 32 KB per
message and 2,500 messages, 200 for everything but too-large or invalid JSON (400), 429
with ``Retry-After`` and ``X-RateLimit-Reset``, ``messageId`` deduplication, the Track and
Identify fields, the Oregon and Dublin hosts); error bodies ``{"code", "message"}`` as
Segment's own analytics-python reads them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from sluice.connectors.batching import pack, with_rejected
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
    basic_auth,
    dump_json,
    is_blank,
    map_param,
    require_text,
)
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

BASE_URL = "https://api.segment.io"
EU_URL = "https://events.eu1.segmentapis.com"
MAX_MESSAGES = 2500  # per batch; Segment silently drops a batch with more
MAX_BATCH_BYTES = 500_000  # "500 KB" read the strict way
MAX_MESSAGE_BYTES = 32 << 10  # 32 KB per message, as Segment's own libraries count it
MAX_MESSAGE_ID = 99  # messageId must have fewer than 100 characters


def _base(ctx: BuildContext) -> str:
    url = (ctx.base_url or BASE_URL).rstrip("/")
    if url == BASE_URL and ctx.config.get("region") == "eu":
        return EU_URL
    return url


def _headers(ctx: BuildContext) -> dict[str, str]:
    key = str(ctx.config.get("write_key") or "").strip()
    if not key:
        raise FatalDelivery("auth", "Segment: no write key is configured")
    # The write key is the user name and the password is empty (the colon matters).
    return {"Content-Type": JSON_CONTENT_TYPE, "Authorization": basic_auth(key, "")}


def _timestamp_of(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch / 1000 if epoch > 1e11 else epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timestamp(event: ActionInput) -> str | None:
    """ISO 8601: the mapped ``timestamp`` (ISO text or epoch s/ms), else when Sluice received it."""
    value = event.params.get("timestamp")
    if is_blank(value):
        value = event.data.get("received_at")
        if is_blank(value):
            return None  # Segment stamps it on arrival
    if isinstance(value, int | float) and not isinstance(value, bool):
        return _timestamp_of(value)
    text = as_text(value, "timestamp").strip()
    if text.isdigit():  # epoch seconds or milliseconds mapped into a text parameter
        return _timestamp_of(float(text))
    try:
        datetime.fromisoformat(text)
    except ValueError as exc:
        raise MappingError("timestamp", f"{text[:40]!r} is not an ISO 8601 date and time") from exc
    return text


def _nested(entries: Mapping[str, Any]) -> dict[str, Any]:
    """Map entries with dotted keys (``page.url``) as the nested objects Segment's context uses."""
    result: dict[str, Any] = {}
    for key, value in entries.items():
        *path, leaf = key.split(".")
        node = result
        for part in path:
            if not isinstance(node.get(part), dict):
                node[part] = {}
            node = node[part]
        node[leaf] = value
    return result


def _identity(event: ActionInput) -> dict[str, str]:
    ids: dict[str, str] = {}
    for param, key in (("user_id", "userId"), ("anonymous_id", "anonymousId")):
        value = event.params.get(param)
        if not is_blank(value):
            ids[key] = as_text(value, param).strip()
    if not ids:
        visitor = event.data.get("tealium_visitor_id") or event.data.get("visitor_id")
        if is_blank(visitor):
            raise MappingError("user_id", "Segment needs a user ID or an anonymous ID")
        ids["anonymousId"] = as_text(visitor, "anonymous_id")
    return ids


def _message(event: ActionInput, kind: str) -> dict[str, Any]:
    key = event.idempotency_key
    if len(key) > MAX_MESSAGE_ID:
        key = hashlib.sha256(key.encode()).hexdigest()
    message: dict[str, Any] = {"type": kind, "messageId": key, **_identity(event)}
    if kind == "track":
        message["event"] = require_text(event.params, "event").strip()
    payload = "properties" if kind == "track" else "traits"
    message[payload] = map_param(event.params, payload)
    optional = {
        "context": _nested(map_param(event.params, "context")),
        "integrations": map_param(event.params, "integrations"),
        "timestamp": _timestamp(event),
    }
    message.update({key: value for key, value in optional.items() if value})
    return message


def _encoded(event: ActionInput, kind: str) -> tuple[bytes, int]:
    """One message's JSON and its size in the batch array (a comma more)."""
    payload = "properties" if kind == "track" else "traits"
    raw = dump_json(_message(event, kind), payload)
    if len(raw) > MAX_MESSAGE_BYTES:
        # Named after the part that usually makes a message big.
        raise MappingError(payload, f"the message is {len(raw)} bytes; Segment takes 32 KB")
    return raw, len(raw) + 1


def _build(ctx: BuildContext, inputs: Sequence[ActionInput], kind: str) -> list[HttpRequest]:
    url, headers = f"{_base(ctx)}/v1/batch", _headers(ctx)
    batches = pack(
        inputs,
        lambda event: _encoded(event, kind),
        max_count=MAX_MESSAGES,
        max_bytes=MAX_BATCH_BYTES,
        overhead=len(b'{"batch":[]}'),
    )
    return [
        batch.request(
            url,
            dict(headers),
            b'{"batch":[' + b",".join(batch.entries) + b"]}",
            sensitive_headers=frozenset({"authorization"}),
        )
        for batch in batches
    ]


def build_track(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    return _build(ctx, inputs, "track")


def build_identify(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    return _build(ctx, inputs, "identify")


def _retry_after(response: HttpResponse) -> float | None:
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    reset = response.headers.get("x-ratelimit-reset", "")
    try:
        seconds = float(reset)
    except ValueError:
        return None
    # Segment documents seconds to wait; an epoch time is read as such, to be safe.
    return max(0.0, seconds - datetime.now(UTC).timestamp()) if seconds > 1e9 else seconds


def _judge(response: HttpResponse) -> Outcome:
    status = response.status
    try:
        body = orjson.loads(response.body) if response.body else {}
    except orjson.JSONDecodeError:
        body = response.body[:300].decode("utf-8", "replace").strip()
    detail = ""
    if isinstance(body, dict):
        detail = ": ".join(str(body[k]) for k in ("code", "message") if body.get(k))
        if 200 <= status < 300 and body.get("success") is not False:
            return None
    elif isinstance(body, str):
        detail = body
    text = f"Segment: HTTP {status}" + (f": {detail}" if detail else "")
    if 200 <= status < 300:
        return FatalDelivery("http_4xx", text, status_code=status)  # a 200 saying it failed
    if status == 429:
        return RetryableDelivery(
            "rate_limit", text, status_code=status, retry_after=_retry_after(response)
        )
    lowered = detail.lower().replace(" ", "")
    if status in (401, 403) or (status == 400 and "writekey" in lowered):
        hint = "check the source's write key and the workspace region"
        return FatalDelivery("auth", f"{text}; {hint}", status_code=status)
    if status == 400:
        hint = "Segment refuses invalid JSON and batches over 500 KB or messages over 32 KB"
        return FatalDelivery("http_4xx", f"{text} ({hint})", status_code=status)
    outcome = classify_status(response)
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category, text, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category if outcome else "http_4xx", text, status_code=status)


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return with_rejected(request, _judge(response))


USER, CONTEXT, BATCH = "User", "Context", "Batching"
USER_HELP = "Your database ID of a known user; set it, an anonymous ID, or both."
ANONYMOUS_HELP = "An ID for a user not known yet; with no ID mapped, the Tealium visitor ID."
CONTEXT_HELP = "Context fields such as ip, userAgent, locale; dotted keys (page.url) nest."
TIME_HELP = "When it happened (ISO 8601 or epoch); by default when Sluice received the event."
DESTINATIONS_HELP = "Turn Segment destinations on or off by name, e.g. All: false, Mixpanel: true."


def _common(payload: Field) -> tuple[Field, ...]:
    return (
        Field("user_id", "User ID", group=USER, help=USER_HELP),
        Field("anonymous_id", "Anonymous ID", group=USER, help=ANONYMOUS_HELP),
        payload,
        Field("context", "Context", "map", group=CONTEXT, help=CONTEXT_HELP),
        # The empty default stands for "when Sluice received the event".
        Field("timestamp", "Timestamp", group=CONTEXT, default="", help=TIME_HELP),
        Field("integrations", "Destinations", "map", group=CONTEXT, help=DESTINATIONS_HELP),
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group=BATCH,
            help=f"Messages per /v1/batch call, at most {MAX_MESSAGES}.",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (s)",
            "number",
            group=BATCH,
            help="Send a batch at the latest this long after its first event (at most 10).",
        ),
    )


LIMITS = Batching(max_count=MAX_MESSAGES, max_bytes=MAX_BATCH_BYTES, max_age_seconds=10)

TRACK = ActionType(
    id="track",
    name="Track",
    description="Record an action a user performed, with its properties, as a Segment Track call.",
    parameters=(
        Field(
            "event",
            "Event name",
            required=True,
            group="Event",
            help="The name of the action, e.g. Order Completed (Segment's Object Action style).",
        ),
        *_common(
            Field(
                "properties",
                "Properties",
                "map",
                group="Event",
                help="What describes the action, e.g. revenue, currency, order_id.",
            )
        ),
    ),
    build=build_track,
    classify=classify,
    consent_categories=("cdp",),
    batching=LIMITS,
)

IDENTIFY = ActionType(
    id="identify",
    name="Identify",
    description="Tie a user to their traits (email, name, plan) as a Segment Identify call.",
    parameters=_common(
        Field(
            "traits",
            "Traits",
            "map",
            group=USER,
            help="What you know about the user, e.g. email, name, plan.",
        )
    ),
    build=build_identify,
    classify=classify,
    consent_categories=("cdp",),
    batching=LIMITS,
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#52bd94"/>
  <path d="M18 26h22M24 38h22" stroke="#ffffff" stroke-width="5" stroke-linecap="round"/>
  <circle cx="46" cy="26" r="3" fill="#ffffff"/>
  <circle cx="18" cy="38" r="3" fill="#ffffff"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="segment",
    name="Segment",
    description=(
        "Send Track and Identify calls to a Segment source through its HTTP Tracking API, "
        "so Segment can route your events and user traits to its destinations."
    ),
    configuration=(
        Field(
            "write_key",
            "Write key",
            required=True,
            secret=True,
            group="Source",
            help="The write key of an HTTP API source (its Settings > API Keys).",
        ),
        Field(
            "region",
            "Workspace region",
            group="Source",
            default="us",
            enum=("us", "eu"),
            help=(
                "us sends to api.segment.io (Oregon); eu to events.eu1.segmentapis.com (Dublin). "
                "EU workspaces must use eu, or Segment drops the events without an error."
            ),
        ),
    ),
    actions=(TRACK, IDENTIFY),
    what_you_need=(
        "A Segment workspace with an HTTP API source (Connections > Sources > Add Source).",
        "The source's write key, and whether the workspace is in the US or the EU region.",
    ),
    resources=(
        Resource(
            "HTTP Tracking API",
            "https://segment.com/docs/connections/sources/catalog/libraries/server/http-api/",
        ),
        Resource("The Segment Spec: Track", "https://segment.com/docs/connections/spec/track/"),
        Resource(
            "The Segment Spec: Identify", "https://segment.com/docs/connections/spec/identify/"
        ),
        Resource("Regional Segment", "https://segment.com/docs/guides/regional-segment/"),
    ),
    icon_svg=ICON_SVG,
    base_url=BASE_URL,
)
