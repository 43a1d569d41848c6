"""TikTok Events API: send web events to a TikTok pixel with Events API 2.0, in batches.

Vendor docs used: Events API 2.0 for web (``POST /open_api/v1.3/event/track/`` with the
``Access-Token`` header; ``event_source`` ``web`` and the pixel code as ``event_source_id``;
``data`` of up to 1,000 events with ``event``, ``event_time`` in Unix seconds, ``event_id``,
``user``, ``properties`` and ``page``; ``test_event_code``; email, phone (E.164) and
external_id SHA-256 hashed, IP, user agent, ``ttclid`` and ``ttp`` in clear; deduplication
with the pixel by ``event_id``), https://business-api.tiktok.com/portal/docs?id=1771100865818625;
standard events and parameters, https://business-api.tiktok.com/portal/docs?id=1771100779668482;
the API's return codes (HTTP 200 with a non-zero ``code``: 40001 no permission, 40002 invalid
parameter, 40100 too many requests, 40104/40105 missing, invalid or revoked access token,
5xxxx server errors), https://business-api.tiktok.com/portal/docs?id=1738373164380162.
"""

from __future__ import annotations

from collections.abc import Sequence
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
    Kind,
    batch_fields,
    commerce,
    event_time,
    json_body,
    pack_events,
    refused_batch,
    user_data,
)
from sluice.connectors.helpers import JSON_CONTENT_TYPE, as_text, dump_json, is_blank, require_text
from sluice.errors import FatalDelivery, RetryableDelivery

DEFAULT_BASE_URL = "https://business-api.tiktok.com"
PATH = "/open_api/v1.3/event/track/"
MAX_EVENTS = 1000
MAX_BYTES = 2_000_000
AUTH_CODES = frozenset({40001, 40104, 40105})
RATE_LIMIT_CODES = frozenset({40100})
PROPERTIES = ("content_type", "order_id", "query", "description")
# Unlike Meta and Pinterest, TikTok names the keys after the details and takes one SHA-256
# hash each, not a list; phone numbers are hashed in E.164, with the +.
HASHED: dict[str, tuple[str, Kind]] = {
    "email": ("email", "email"),
    "phone": ("phone", "phone_e164"),
    "external_id": ("external_id", "id"),
}
PLAIN = ("ip", "user_agent", "ttclid", "ttp")


def _event(event: ActionInput) -> dict[str, Any]:
    params = event.params
    body: dict[str, Any] = {
        "event": require_text(params, "event").strip(),
        "event_time": int(event_time(event)),
        # The pixel's event_id for the same event lets TikTok keep one of the two; without
        # one mapped, the delivery's key keeps retries from counting twice.
        "event_id": as_text(params.get("event_id") or event.idempotency_key, "event_id"),
        "user": user_data(params, HASHED, PLAIN, one_each=True),
    }
    properties = commerce(params, "properties", PROPERTIES)
    if properties:
        body["properties"] = properties
    page = {
        key: as_text(params[name], name).strip()
        for key, name in (("url", "page_url"), ("referrer", "page_referrer"))
        if not is_blank(params.get(name))
    }
    if page:
        body["page"] = page
    return body


def build_send_event(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    pixel = str(ctx.config.get("pixel_code") or "").strip()
    token = str(ctx.config.get("access_token") or "").strip()
    if not pixel or not token:
        raise FatalDelivery("auth", "TikTok: set the pixel code and an Events API access token")
    url = f"{(ctx.base_url or DEFAULT_BASE_URL).rstrip('/')}{PATH}"
    envelope: dict[str, Any] = {"event_source": "web", "event_source_id": pixel}
    if not is_blank(ctx.config.get("test_event_code")):
        envelope["test_event_code"] = str(ctx.config["test_event_code"]).strip()
    headers = {"Content-Type": JSON_CONTENT_TYPE, "Access-Token": token}
    batches = pack_events(inputs, _event, max_count=MAX_EVENTS, max_bytes=MAX_BYTES)
    return [
        batch.request(
            url,
            dict(headers),
            dump_json({**envelope, "data": batch.entries}, "properties"),
            sensitive_headers=frozenset({"access-token"}),
        )
        for batch in batches
    ]


def _judge(response: HttpResponse, sent: int) -> Outcome | list[Outcome]:
    """TikTok answers HTTP 200 with ``code`` 0 for success and another code for a failure."""
    doc = json_body(response.body)
    code = doc.get("code")
    status = response.status
    if not isinstance(code, int) or isinstance(code, bool):
        return classify_status(response)  # no TikTok envelope: a proxy or gateway answered
    if code == 0 and 200 <= status < 300:
        return None
    text = f"TikTok {code}: {doc.get('message') or 'error'}"
    if doc.get("request_id"):
        text += f" (request_id {doc['request_id']})"
    if code in AUTH_CODES or status in (401, 403):
        return FatalDelivery("auth", f"{text}; check the access token", status_code=status)
    if code in RATE_LIMIT_CODES or status == 429:
        wait = parse_retry_after(response.headers.get("retry-after"))
        return RetryableDelivery("rate_limit", text, status_code=status, retry_after=wait)
    if code >= 50000 or status >= 500:
        wait = parse_retry_after(response.headers.get("retry-after"))
        return RetryableDelivery("http_5xx", text, status_code=status, retry_after=wait)
    # TikTok refuses the whole batch for one bad event, naming it as data[N] when it can.
    return refused_batch(FatalDelivery("http_4xx", text, status_code=status), text, sent)


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return with_rejected(request, _judge(response, len(sent_positions(request))))


EVENT, USER, PROPS, PAGE = "Event", "Customer information", "Properties", "Page"

BATCHING = Batching(max_count=MAX_EVENTS, max_bytes=MAX_BYTES, max_age_seconds=10)

SEND_EVENT = ActionType(
    id="send_event",
    name="Send Event",
    description=(
        "Send a web event to a TikTok pixel with Events API 2.0; email, phone and external "
        "ID are SHA-256 hashed; up to 1,000 events per call."
    ),
    parameters=(
        Field(
            "event",
            "Event name",
            required=True,
            group=EVENT,
            help="A standard event (CompletePayment, AddToCart, ViewContent, ...) or a custom one.",
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
            help="The pixel's event_id for the same event, to deduplicate; default: a stable ID.",
        ),
        Field("email", "Email", group=USER, help="Trimmed, lowercased and SHA-256 hashed."),
        Field(
            "phone",
            "Phone",
            group=USER,
            help="With its country code; written as E.164 (+4915...) and SHA-256 hashed.",
        ),
        Field("external_id", "External ID", group=USER, help="Your user ID; SHA-256 hashed."),
        Field("ip", "IP address", group=USER, help="The browser's public IP, in clear."),
        Field("user_agent", "User agent", group=USER, help="The browser's user agent, in clear."),
        Field("ttclid", "TikTok click ID", group=USER, help="The ttclid URL parameter or cookie."),
        Field("ttp", "TikTok cookie ID", group=USER, help="The _ttp cookie of the TikTok pixel."),
        Field("value", "Value", "number", group=PROPS, help="The order's value."),
        Field("currency", "Currency", group=PROPS, help="ISO 4217, e.g. EUR."),
        Field(
            "contents",
            "Contents",
            "list",
            group=PROPS,
            help='Products as JSON: [{"content_id": "A1", "quantity": 1, "price": 9.5}].',
        ),
        Field("content_type", "Content type", group=PROPS, help="product or product_group."),
        Field("order_id", "Order ID", group=PROPS, help="The order's ID."),
        Field("query", "Search query", group=PROPS, help="What the user searched for."),
        Field("description", "Description", group=PROPS, help="A description of the event."),
        Field("properties", "Other properties", "map", group=PROPS, help="Sent as they are."),
        Field("page_url", "Page URL", "url", group=PAGE, help="The page the event happened on."),
        Field("page_referrer", "Referrer", "url", group=PAGE, help="The page's referrer."),
        *batch_fields(BATCHING),
    ),
    build=build_send_event,
    classify=classify,
    consent_categories=("display ads", "social"),
    batching=BATCHING,
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#000000"/>
  <path d="M35 14v24a7 7 0 1 1-7-7" fill="none" stroke="#25f4ee" stroke-width="5"
        stroke-linecap="round" transform="translate(-1.5 -1.5)"/>
  <path d="M35 14v24a7 7 0 1 1-7-7M35 14c1 6 5 9 11 9" fill="none" stroke="#ffffff"
        stroke-width="5" stroke-linecap="round"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="tiktok_events_api",
    name="TikTok Events API",
    description=(
        "Send web conversions to a TikTok pixel from the server (Events API 2.0), for ads "
        "measurement and optimisation on TikTok."
    ),
    configuration=(
        Field(
            "pixel_code",
            "Pixel code",
            required=True,
            group="Credentials",
            help="In TikTok Ads Manager > Tools > Events > Web events: the pixel's code.",
        ),
        Field(
            "access_token",
            "Access token",
            required=True,
            secret=True,
            group="Credentials",
            help="Generated in the pixel's Settings > Events API.",
        ),
        Field(
            "test_event_code",
            "Test event code",
            group="Advanced",
            help="From the pixel's Test events tab: events then show there only.",
        ),
    ),
    actions=(SEND_EVENT,),
    what_you_need=(
        "A TikTok Ads Manager account with a web pixel, and its pixel code.",
        "An Events API access token generated for that pixel.",
        "Customer details to match people (email, phone, IP and user agent, ttclid, _ttp).",
    ),
    resources=(
        Resource(
            "Events API 2.0 for web",
            "https://business-api.tiktok.com/portal/docs?id=1771100865818625",
        ),
        Resource(
            "Standard events and parameters",
            "https://business-api.tiktok.com/portal/docs?id=1771100779668482",
        ),
        Resource("Return codes", "https://business-api.tiktok.com/portal/docs?id=1738373164380162"),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
