"""Pinterest Conversions API: send conversion events to an ad account, in batches.

Vendor docs used: the API reference of ``events/create`` (``POST
/v5/ad_accounts/{ad_account_id}/events`` with a conversion access token as a Bearer token;
``data`` of up to 1,000 events; ``?test=true`` to validate without recording; the answer's
``events[]`` with a ``status`` and ``error_message`` per event, in the request's order; 400,
401, 403, 429 and 503 answers; 5,000 calls per minute per ad account),
https://developers.pinterest.com/docs/api/v5/events-create; the conversions guide (event
names, ``action_source``, ``event_id`` deduplication with the Pinterest tag, how to normalise
and SHA-256 hash ``em``, ``ph`` and the other user data), https://developers.pinterest.com/docs/api-features/conversion-overview/;
rate limits, https://developers.pinterest.com/docs/reference/ratelimits/.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

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
    Kind,
    batch_fields,
    commerce,
    contact_fields,
    event_time,
    json_body,
    pack_events,
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

DEFAULT_BASE_URL = "https://api.pinterest.com"
MAX_EVENTS = 1000
MAX_BYTES = 2_000_000
ACTION_SOURCES = ("web", "app_android", "app_ios", "offline")
STANDARD_EVENTS = (
    "add_to_cart, checkout, custom, lead, page_visit, search, signup, view_category, watch_video"
)
# Meta's customer information table, plus mobile ad IDs; Pinterest also takes gender "n"
# and a value as text (below).
HASHED: dict[str, tuple[str, Kind]] = {**USER_DATA, "mobile_ad_id": ("hashed_maids", "id")}
CUSTOM = ("order_id", "search_string", "content_name", "content_category", "content_brand")


def _event(event: ActionInput) -> dict[str, Any]:
    params = event.params
    source = require_text(params, "action_source").strip()
    if source not in ACTION_SOURCES:
        raise MappingError("action_source", f"must be one of {', '.join(ACTION_SOURCES)}")
    body: dict[str, Any] = {
        "event_name": require_text(params, "event_name").strip(),
        "action_source": source,
        "event_time": int(event_time(event)),
        # The tag's event_id for the same event lets Pinterest keep one of the two; without
        # one mapped, the delivery's key keeps retries from counting twice.
        "event_id": as_text(params.get("event_id") or event.idempotency_key, "event_id"),
    }
    if not is_blank(params.get("event_source_url")):
        body["event_source_url"] = as_text(params["event_source_url"], "event_source_url")
    if isinstance(params.get("opt_out"), bool):
        body["opt_out"] = params["opt_out"]
    body["user_data"] = user_data(params, HASHED, ("client_ip_address", "client_user_agent"))
    custom = commerce(params, "custom_data", CUSTOM)
    if "value" in custom:
        custom["value"] = as_text(custom["value"], "value")  # Pinterest takes it as text
    if custom:
        body["custom_data"] = custom
    return body


def build_send_event(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    account = str(ctx.config.get("ad_account_id") or "").strip()
    token = str(ctx.config.get("access_token") or "").strip()
    if not account or not token:
        raise FatalDelivery("auth", "Pinterest: set the ad account ID and a conversion token")
    url = f"{(ctx.base_url or DEFAULT_BASE_URL).rstrip('/')}/v5/ad_accounts/{account}/events"
    if ctx.config.get("test_mode") is True:
        url = with_query(url, {"test": "true"})
    headers = {"Content-Type": JSON_CONTENT_TYPE, "Authorization": f"Bearer {token}"}
    batches = pack_events(inputs, _event, max_count=MAX_EVENTS, max_bytes=MAX_BYTES)
    return [
        batch.request(
            url,
            dict(headers),
            dump_json({"data": batch.entries}, "custom_data"),
            sensitive_headers=frozenset({"authorization"}),
        )
        for batch in batches
    ]


def _wait(headers: Mapping[str, str]) -> float | None:
    """``Retry-After``, else ``X-RateLimit-Reset`` (seconds to wait, or an epoch time)."""
    wait = parse_retry_after(headers.get("retry-after"))
    if wait is not None:
        return wait
    try:
        reset = float(headers.get("x-ratelimit-reset") or "")
    except ValueError:
        return None
    return max(0.0, reset - time.time()) if reset > 1e9 else max(0.0, reset)


def _per_event(events: list[Any], status: int) -> list[Outcome]:
    outcomes: list[Outcome] = []
    for result in events:
        result = result if isinstance(result, Mapping) else {}
        if str(result.get("status", "")).lower() == "processed":
            outcomes.append(None)
            continue
        why = result.get("error_message") or "the event was not processed"
        outcomes.append(FatalDelivery("http_4xx", f"Pinterest: {why}", status_code=status))
    return outcomes


def _judge(response: HttpResponse, sent: int) -> Outcome | list[Outcome]:
    doc = json_body(response.body)
    status = response.status
    events = doc.get("events")
    # Pinterest judges each event of a batch, in the request's order.
    answered = 200 <= status < 300 or status in (400, 422)
    if answered and isinstance(events, list) and len(events) == sent:
        return _per_event(events, status)
    if 200 <= status < 300:
        return None
    text = f"Pinterest: {doc.get('message') or f'HTTP {status}'}"
    if doc.get("code") is not None:
        text += f" (code {doc['code']})"
    if status in (401, 403):
        return FatalDelivery("auth", f"{text}; check the conversion token", status_code=status)
    if status == 429:
        return RetryableDelivery(
            "rate_limit", text, status_code=status, retry_after=_wait(response.headers)
        )
    outcome = classify_status(response)
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category, text, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category if outcome else "http_4xx", text, status_code=status)


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return with_rejected(request, _judge(response, len(sent_positions(request))))


EVENT, USER, CUSTOM_DATA = "Event", "User data", "Custom data"


BATCHING = Batching(max_count=MAX_EVENTS, max_bytes=MAX_BYTES, max_age_seconds=10)

SEND_EVENT = ActionType(
    id="send_event",
    name="Send Event",
    description=(
        "Send a conversion event to a Pinterest ad account with the Conversions API; user "
        "data is normalised and SHA-256 hashed; up to 1,000 events per call, judged one by one."
    ),
    parameters=(
        Field(
            "event_name",
            "Event name",
            required=True,
            group=EVENT,
            help=f"One of {STANDARD_EVENTS}; other names are only for audiences.",
        ),
        Field(
            "action_source",
            "Action source",
            required=True,
            group=EVENT,
            default="web",
            enum=ACTION_SOURCES,
            help="Where the conversion happened.",
        ),
        Field(
            "event_time",
            "Event time",
            group=EVENT,
            default="",
            help="Unix time or ISO 8601; by default when Sluice received the event.",
        ),
        Field(
            "event_id",
            "Event ID",
            group=EVENT,
            help="The Pinterest tag's event ID for the same event; default: a stable ID.",
        ),
        Field("event_source_url", "Event source URL", "url", group=EVENT, help="The page's URL."),
        Field(
            "opt_out",
            "Opted out",
            "boolean",
            group=EVENT,
            help="True when the user opted out of tracking (or limits ad tracking on the app).",
        ),
        *contact_fields(HASHED, USER, genders=("f", "m", "n")),
        Field("client_ip_address", "Client IP address", group=USER, help="Sent in clear."),
        Field("client_user_agent", "Client user agent", group=USER, help="Sent in clear."),
        Field("value", "Value", "number", group=CUSTOM_DATA, help="The conversion's value."),
        Field("currency", "Currency", group=CUSTOM_DATA, help="ISO 4217, e.g. EUR."),
        Field("content_ids", "Content IDs", "list", group=CUSTOM_DATA, help="Product IDs."),
        Field(
            "contents",
            "Contents",
            "list",
            group=CUSTOM_DATA,
            help='Products as JSON: [{"item_price": "9.50", "quantity": 2}].',
        ),
        Field("num_items", "Number of items", "integer", group=CUSTOM_DATA, help="Items bought."),
        Field("order_id", "Order ID", group=CUSTOM_DATA, help="Helps Pinterest deduplicate."),
        Field("search_string", "Search string", group=CUSTOM_DATA, help="For search events."),
        Field("content_name", "Content name", group=CUSTOM_DATA, help="The page or product."),
        Field("content_category", "Content category", group=CUSTOM_DATA, help="Its category."),
        Field("content_brand", "Content brand", group=CUSTOM_DATA, help="Its brand."),
        Field(
            "custom_data",
            "Other custom data",
            "map",
            group=CUSTOM_DATA,
            help="More custom_data properties (e.g. opt_out_type), sent as they are.",
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
  <rect width="64" height="64" rx="14" fill="#e60023"/>
  <text x="32" y="46" text-anchor="middle" font-family="Georgia, serif"
        font-size="40" font-weight="700" fill="#ffffff">P</text>
</svg>
"""

CONNECTOR = ConnectorType(
    id="pinterest_conversions_api",
    name="Pinterest Conversions API",
    description=(
        "Send conversions (checkouts, sign-ups, leads, page visits) to a Pinterest ad account "
        "from the server, for ads measurement and optimisation."
    ),
    configuration=(
        Field(
            "ad_account_id",
            "Ad account ID",
            required=True,
            group="Credentials",
            help="The numeric ID of the Pinterest ad account, shown in Ads Manager.",
        ),
        Field(
            "access_token",
            "Conversion access token",
            required=True,
            secret=True,
            group="Credentials",
            help="Generated in Ads Manager > Conversions > Conversion access token.",
        ),
        Field(
            "test_mode",
            "Test mode",
            "boolean",
            default=False,
            group="Advanced",
            help="Send ?test=true: Pinterest checks each event and answers, but records none.",
        ),
    ),
    actions=(SEND_EVENT,),
    what_you_need=(
        "A Pinterest business account with an ad account, and the ad account's ID.",
        "A conversion access token for that ad account (owner, or Admin/Analyst/Audience/"
        "Campaign access).",
        "For each event an email, a mobile ad ID, or both the IP address and user agent.",
    ),
    resources=(
        Resource(
            "Send conversion events (API reference)",
            "https://developers.pinterest.com/docs/api/v5/events-create",
        ),
        Resource(
            "Conversions API guide",
            "https://developers.pinterest.com/docs/api-features/conversion-overview/",
        ),
        Resource("Rate limits", "https://developers.pinterest.com/docs/reference/ratelimits/"),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
