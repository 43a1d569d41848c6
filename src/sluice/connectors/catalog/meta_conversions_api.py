"""Meta Conversions API: send web and offline events to a pixel (dataset), in batches.

Vendor docs used: the Conversions API overview and "Using the API" (``POST
/{api_version}/{pixel_id}/events`` with an access token, ``data`` holding up to 1,000 events,
``test_event_code``, a batch refused whole when one event is invalid),
https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api;
server event parameters (``event_name``, ``event_time``, ``action_source``, ``event_id``,
``event_source_url``), https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/server-event;
customer information parameters (what to normalise and SHA-256 hash, what to send as is),
https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters;
custom data, https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/custom-data;
deduplication by ``event_id``, https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events;
Graph API error handling (error codes, ``X-Business-Use-Case-Usage``),
https://developers.facebook.com/docs/graph-api/guides/error-handling and
https://developers.facebook.com/docs/graph-api/overview/rate-limiting.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import orjson

from sluice.connectors.batching import sent_positions, with_rejected
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
from sluice.connectors.hashing import (
    USER_DATA,
    batch_fields,
    commerce,
    contact_fields,
    event_time,
    json_body,
    pack_events,
    refused_batch,
    user_data,
)
from sluice.connectors.helpers import (
    JSON_CONTENT_TYPE,
    as_text,
    dump_json,
    is_blank,
    require_text,
    with_query,
)
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v23.0"
MAX_EVENTS = 1000
MAX_BYTES = 2_000_000
ACTION_SOURCES = (
    "website",
    "app",
    "email",
    "phone_call",
    "chat",
    "physical_store",
    "system_generated",
    "business_messaging",
    "other",
)
# Customer information hashed with SHA-256 as Meta requires: the table Pinterest shares.
HASHED = USER_DATA
# Sent as they are: Meta needs them in clear to match a browser.
PLAIN = ("client_ip_address", "client_user_agent", "fbc", "fbp")
CUSTOM = ("content_type", "content_name", "content_category", "order_id")
AUTH_CODES = frozenset({102, 190, 10}) | frozenset(range(200, 300))
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, 80004})
TRANSIENT_CODES = frozenset({1, 2})
_VERSION = re.compile(r"^v\d+\.\d+$")


def _event(event: ActionInput) -> dict[str, Any]:
    params = event.params
    source = require_text(params, "action_source").strip()
    if source not in ACTION_SOURCES:
        raise MappingError("action_source", f"must be one of {', '.join(ACTION_SOURCES)}")
    body: dict[str, Any] = {
        "event_name": require_text(params, "event_name").strip(),
        "event_time": int(event_time(event)),
        "action_source": source,
        # The pixel sends the same event_id for the same event: Meta keeps one of the two.
        # Without one mapped, the delivery's key keeps retries from counting twice.
        "event_id": as_text(params.get("event_id") or event.idempotency_key, "event_id"),
    }
    if not is_blank(params.get("event_source_url")):
        body["event_source_url"] = as_text(params["event_source_url"], "event_source_url")
    body["user_data"] = user_data(params, HASHED, PLAIN)
    custom = commerce(params, "custom_data", CUSTOM)
    if custom:
        body["custom_data"] = custom
    return body


def build_send_event(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    pixel = str(ctx.config.get("pixel_id") or "").strip()
    token = str(ctx.config.get("access_token") or "").strip()
    version = str(ctx.config.get("api_version") or DEFAULT_API_VERSION).strip()
    if not pixel or not token:
        raise FatalDelivery("auth", "Meta: set the pixel (dataset) ID and an access token")
    if not _VERSION.match(version):
        raise FatalDelivery("http_4xx", f"Meta: API version {version!r} is not like v23.0")
    base = (ctx.base_url or DEFAULT_BASE_URL).rstrip("/")
    url = with_query(f"{base}/{version}/{pixel}/events", {"access_token": token})
    envelope: dict[str, Any] = {}
    if not is_blank(ctx.config.get("test_event_code")):
        envelope["test_event_code"] = str(ctx.config["test_event_code"]).strip()
    batches = pack_events(inputs, _event, max_count=MAX_EVENTS, max_bytes=MAX_BYTES)
    return [
        batch.request(
            url,
            {"Content-Type": JSON_CONTENT_TYPE},
            dump_json({"data": batch.entries, **envelope}, "custom_data"),
        )
        for batch in batches
    ]


def _regain_seconds(headers: Mapping[str, str]) -> float | None:
    """Meta's own wait: ``estimated_time_to_regain_access`` (minutes) in the usage header."""
    wait = parse_retry_after(headers.get("retry-after"))
    if wait is not None:
        return wait
    try:
        usage = orjson.loads(headers.get("x-business-use-case-usage") or "{}")
    except orjson.JSONDecodeError:
        return None
    minutes = [
        entry.get("estimated_time_to_regain_access")
        for entries in (usage.values() if isinstance(usage, dict) else ())
        for entry in (entries if isinstance(entries, list) else ())
        if isinstance(entry, dict)
    ]
    found = [float(m) for m in minutes if isinstance(m, int | float) and m > 0]
    return max(found) * 60 if found else None


def _judge(response: HttpResponse, sent: int) -> Outcome | list[Outcome]:
    if 200 <= response.status < 300:
        return None
    error = json_body(response.body).get("error")
    if not isinstance(error, Mapping):
        return classify_status(response)
    code = error.get("code")
    status = response.status
    parts = [f"Meta: (#{code}) {error.get('message', 'error')}"]
    parts += [str(error[k]) for k in ("error_user_title", "error_user_msg") if error.get(k)]
    blame = (error.get("error_data") or {}) if isinstance(error.get("error_data"), dict) else {}
    if blame.get("blame_field_specs"):
        parts.append(f"field {blame['blame_field_specs']}")
    if error.get("fbtrace_id"):
        parts.append(f"fbtrace_id {error['fbtrace_id']}")
    text = "; ".join(parts)
    if code in AUTH_CODES or status in (401, 403):
        return FatalDelivery("auth", f"{text}; check the access token", status_code=status)
    if code in RATE_LIMIT_CODES or status == 429:
        wait = _regain_seconds(response.headers)
        return RetryableDelivery("rate_limit", text, status_code=status, retry_after=wait)
    if code in TRANSIENT_CODES or status >= 500:
        wait = parse_retry_after(response.headers.get("retry-after"))
        return RetryableDelivery("http_5xx", text, status_code=status, retry_after=wait)
    # Meta refuses a whole batch when one event is invalid (code 100 names the parameter).
    return refused_batch(FatalDelivery("http_4xx", text, status_code=status), text, sent)


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return with_rejected(request, _judge(response, len(sent_positions(request))))


EVENT, USER, CUSTOM_DATA = "Event", "Customer information", "Custom data"


BATCHING = Batching(max_count=MAX_EVENTS, max_bytes=MAX_BYTES, max_age_seconds=10)

SEND_EVENT = ActionType(
    id="send_event",
    name="Send Event",
    description=(
        "Send a conversion event to a Meta pixel (dataset) with the Conversions API; "
        "customer information is normalised and SHA-256 hashed; up to 1,000 events per call."
    ),
    parameters=(
        Field(
            "event_name",
            "Event name",
            required=True,
            group=EVENT,
            help="A standard event (Purchase, Lead, AddToCart, ...) or a custom one.",
        ),
        Field(
            "action_source",
            "Action source",
            required=True,
            group=EVENT,
            default="website",
            enum=ACTION_SOURCES,
            help="Where the conversion happened.",
        ),
        Field(
            "event_time",
            "Event time",
            group=EVENT,
            default="",
            help="Unix time or ISO 8601, at most 7 days ago; by default when Sluice received it.",
        ),
        Field(
            "event_id",
            "Event ID",
            group=EVENT,
            help="The pixel's eventID for the same event, to deduplicate; default: a stable ID.",
        ),
        Field(
            "event_source_url",
            "Event source URL",
            "url",
            group=EVENT,
            help="The page's URL; Meta needs it for website events.",
        ),
        *contact_fields(HASHED, USER, genders=("f", "m")),
        Field("client_ip_address", "Client IP address", group=USER, help="Sent in clear."),
        Field(
            "client_user_agent",
            "Client user agent",
            group=USER,
            help="The browser's user agent, in clear; Meta needs it for website events.",
        ),
        Field("fbc", "Click ID (fbc)", group=USER, help="The _fbc cookie, in clear."),
        Field("fbp", "Browser ID (fbp)", group=USER, help="The _fbp cookie, in clear."),
        Field("value", "Value", "number", group=CUSTOM_DATA, help="The conversion's value."),
        Field("currency", "Currency", group=CUSTOM_DATA, help="ISO 4217, e.g. EUR."),
        Field("content_ids", "Content IDs", "list", group=CUSTOM_DATA, help="Product IDs."),
        Field(
            "contents",
            "Contents",
            "list",
            group=CUSTOM_DATA,
            help='Products as JSON: [{"id": "A1", "quantity": 2, "item_price": 9.5}].',
        ),
        Field("content_type", "Content type", group=CUSTOM_DATA, help="product or product_group."),
        Field("content_name", "Content name", group=CUSTOM_DATA, help="The page or product name."),
        Field("content_category", "Content category", group=CUSTOM_DATA, help="Its category."),
        Field("order_id", "Order ID", group=CUSTOM_DATA, help="The order's ID."),
        Field("num_items", "Number of items", "integer", group=CUSTOM_DATA, help="Items bought."),
        Field(
            "custom_data",
            "Other custom data",
            "map",
            group=CUSTOM_DATA,
            help="More custom_data properties, sent as they are.",
        ),
        *batch_fields(BATCHING),
    ),
    build=build_send_event,
    classify=classify,
    consent_categories=("display ads", "social"),
    batching=BATCHING,
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#0866ff"/>
  <path d="M12 40c0-10 5-18 10-18 7 0 13 18 20 18 4 0 6-4 6-9s-2-9-6-9
           c-7 0-13 18-20 18-5 0-10-3-10-8z"
        fill="none" stroke="#ffffff" stroke-width="5" stroke-linejoin="round"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="meta_conversions_api",
    name="Meta Conversions API",
    description=(
        "Send conversions (purchases, leads, sign-ups) to a Meta pixel from the server, for "
        "ads measurement and optimisation on Facebook and Instagram."
    ),
    configuration=(
        Field(
            "pixel_id",
            "Pixel (dataset) ID",
            required=True,
            group="Credentials",
            help="In Events Manager > Data sources > your pixel > Settings.",
        ),
        Field(
            "access_token",
            "Access token",
            required=True,
            secret=True,
            group="Credentials",
            help="Generated under the pixel's Settings > Conversions API.",
        ),
        Field(
            "api_version",
            "Graph API version",
            default=DEFAULT_API_VERSION,
            group="Advanced",
            help="The Graph API version to call, e.g. v23.0.",
        ),
        Field(
            "test_event_code",
            "Test event code",
            group="Advanced",
            help="From Events Manager > Test events: events then show there only.",
        ),
    ),
    actions=(SEND_EVENT,),
    what_you_need=(
        "A Meta Business account with a pixel (dataset) in Events Manager, and its ID.",
        "A Conversions API access token for that pixel.",
        "Customer details to match people (email, phone, IP and user agent, fbp/fbc cookies).",
    ),
    resources=(
        Resource(
            "Conversions API: using the API",
            "https://developers.facebook.com/docs/marketing-api/conversions-api/using-the-api",
        ),
        Resource(
            "Customer information parameters",
            "https://developers.facebook.com/docs/marketing-api/conversions-api/parameters/customer-information-parameters",
        ),
        Resource(
            "Deduplicate pixel and server events",
            "https://developers.facebook.com/docs/marketing-api/conversions-api/deduplicate-pixel-and-server-events",
        ),
        Resource(
            "Graph API error handling",
            "https://developers.facebook.com/docs/graph-api/guides/error-handling",
        ),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
