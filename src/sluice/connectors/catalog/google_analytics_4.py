"""Google Analytics 4: send events with the Measurement Protocol, batched per client.

Vendor docs used: the Measurement Protocol reference (``POST /mp/collect`` with
``measurement_id`` and ``api_secret`` in the query, the JSON body, always a 2xx answer,
reserved names), https://developers.google.com/analytics/devguides/collection/protocol/ga4/reference;
sending events (limits: 25 events per request, 25 parameters per event, 25 user properties,
name lengths, bodies under 130 kB; per-event ``timestamp_micros``; backdating up to 72 hours),
https://developers.google.com/analytics/devguides/collection/protocol/ga4/sending-events;
the validation server (``/debug/mp/collect`` and its ``validationMessages``),
https://developers.google.com/analytics/devguides/collection/protocol/ga4/validating-events;
event naming rules, https://support.google.com/analytics/answer/13316687.
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
)
from sluice.connectors.hashing import (
    batch_fields,
    event_time,
    json_body,
    listing,
    mapping,
    pack_events,
)
from sluice.connectors.helpers import (
    JSON_CONTENT_TYPE,
    as_text,
    dump_json,
    is_blank,
    require_text,
    with_query,
)
from sluice.errors import FatalDelivery, MappingError

DEFAULT_BASE_URL = "https://www.google-analytics.com"
DOCS = "https://developers.google.com/analytics/devguides/collection/protocol/ga4"
MAX_EVENTS = 25  # per request
MAX_BYTES = 130_000  # "the post body must be smaller than 130kB"
MAX_PARAMS = 25
MAX_USER_PROPERTIES = 25
CONSENT_VALUES = ("GRANTED", "DENIED")

_EVENT_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,39}$")
_USER_PROPERTY = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,23}$")
_SEPARATORS = re.compile(r"[\s.\-]+")
_INDEX = re.compile(r"(?:index:? ?\[|events\[)(\d+)\]", re.IGNORECASE)
RESERVED_PREFIXES = ("_", "firebase_", "ga_", "google_", "gtag.")
# The word list reads like the docs' one; a literal of 39 strings would not.
RESERVED_EVENTS = frozenset(
    "ad_activeview ad_click ad_exposure ad_impression ad_query ad_reward adunit_exposure "  # noqa: SIM905
    "app_background app_clear_data app_exception app_install app_remove app_store_refund "
    "app_store_subscription_cancel app_store_subscription_convert app_store_subscription_renew "
    "app_update app_upgrade dynamic_link_app_open dynamic_link_app_update "
    "dynamic_link_first_open error firebase_campaign firebase_in_app_message_action "
    "firebase_in_app_message_dismiss firebase_in_app_message_impression first_open first_visit "
    "in_app_purchase notification_dismiss notification_foreground notification_open "
    "notification_receive notification_send os_update screen_view session_start "
    "session_start_with_rollout user_engagement".split()
)
RESERVED_PARAMS = frozenset({"firebase_conversion"})
RESERVED_USER_PROPERTIES = frozenset(
    ("first_open_time", "first_visit_time", "last_deep_link_referrer", "user_id")
) | {"first_open_after_install"}


def _name_problem(name: str, pattern: re.Pattern[str], limit: int, reserved: frozenset[str]) -> str:
    if not pattern.match(name):
        return f"must be {limit} characters or fewer: letters, digits and _, starting with a letter"
    if name in reserved or name.lower().startswith(RESERVED_PREFIXES):
        return "is reserved by Google Analytics"
    return ""


def _event_params(event: ActionInput) -> dict[str, Any]:
    params = mapping(event.params, "event_params")
    items = listing(event.params, "items")
    if items is not None:
        if not all(isinstance(item, Mapping) for item in items):
            raise MappingError("items", "must be a JSON array of item objects")
        params["items"] = items
    if len(params) > MAX_PARAMS:
        raise MappingError("event_params", f"{len(params)} parameters; at most {MAX_PARAMS}")
    for name in params:
        problem = _name_problem(name, _EVENT_NAME, 40, RESERVED_PARAMS)
        if problem:
            raise MappingError("event_params", f"parameter name {name!r} {problem}")
    return params


def _user_properties(event: ActionInput) -> dict[str, Any]:
    values = mapping(event.params, "user_properties")
    if len(values) > MAX_USER_PROPERTIES:
        raise MappingError("user_properties", f"{len(values)}; at most {MAX_USER_PROPERTIES}")
    for name, value in values.items():
        problem = _name_problem(name, _USER_PROPERTY, 24, RESERVED_USER_PROPERTIES)
        if problem:
            raise MappingError("user_properties", f"name {name!r} {problem}")
        if isinstance(value, str) and len(value) > 36:
            raise MappingError("user_properties", f"the value of {name!r} is over 36 characters")
    return {name: {"value": value} for name, value in values.items()}


def _consent(params: Mapping[str, Any]) -> dict[str, str]:
    consent: dict[str, str] = {}
    for kind in ("ad_user_data", "ad_personalization"):
        name = f"consent_{kind}"
        value = params.get(name)
        if is_blank(value):
            continue
        text = as_text(value, name).strip().upper()
        if text not in CONSENT_VALUES:
            raise MappingError(name, f"must be GRANTED or DENIED, got {text[:20]!r}")
        consent[kind] = text
    return consent


def _client_id(event: ActionInput) -> str:
    value = event.params.get("client_id")
    if is_blank(value):
        # Tealium's visitor ID is a stable per-browser ID, as GA4's client ID is.
        value = event.data.get("tealium_visitor_id")
    if is_blank(value):
        raise MappingError("client_id", "map the GA client ID (or send tealium_visitor_id)")
    return as_text(value, "client_id").strip()


def _measurement(event: ActionInput) -> dict[str, Any]:
    """One event with the request-level fields it needs, which decide its request."""
    # "Order Completed" and "cart-add" become Order_Completed and cart_add: GA4 names
    # allow only letters, digits and _, and event names usually come from the data.
    name = _SEPARATORS.sub("_", require_text(event.params, "event_name").strip())
    problem = _name_problem(name, _EVENT_NAME, 40, RESERVED_EVENTS)
    if problem:
        raise MappingError("event_name", f"{name!r} {problem}")
    when = event_time(event)
    measurement: dict[str, Any] = {"client_id": _client_id(event)}
    if not is_blank(event.params.get("user_id")):
        measurement["user_id"] = as_text(event.params["user_id"], "user_id").strip()
    properties = _user_properties(event)
    if properties:
        measurement["user_properties"] = properties
    consent = _consent(event.params)
    if consent:
        measurement["consent"] = consent
    # Each event keeps its own time: events of one client share a request, not a moment.
    measurement["events"] = [
        {"name": name, "params": _event_params(event), "timestamp_micros": int(when * 1_000_000)}
    ]
    return measurement


def _same_request(body: dict[str, Any]) -> bytes:
    """Events may share a request only when everything but the event itself is equal."""
    shared = {key: value for key, value in body.items() if key != "events"}
    return orjson.dumps(shared, option=orjson.OPT_SORT_KEYS)


def build_send_event(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    measurement_id = str(ctx.config.get("measurement_id") or "").strip()
    secret = str(ctx.config.get("api_secret") or "").strip()
    if not measurement_id:
        raise FatalDelivery("auth", "GA4: set the measurement ID of a web stream (G-XXXXXXXXXX)")
    if not secret:
        raise FatalDelivery("auth", "GA4: no Measurement Protocol API secret is configured")
    debug = ctx.config.get("validate_with_debug_endpoint") is True
    path = "/debug/mp/collect" if debug else "/mp/collect"
    url = with_query(
        f"{(ctx.base_url or DEFAULT_BASE_URL).rstrip('/')}{path}",
        {"measurement_id": measurement_id, "api_secret": secret},
    )
    batches = pack_events(
        inputs, _measurement, max_count=MAX_EVENTS, max_bytes=MAX_BYTES, group=_same_request
    )
    requests: list[HttpRequest] = []
    for batch in batches:
        body = {**batch.entries[0], "events": [b["events"][0] for b in batch.entries]}
        requests.append(
            batch.request(url, {"Content-Type": JSON_CONTENT_TYPE}, dump_json(body, "event_params"))
        )
    return requests


def _validation(response: HttpResponse, sent: int) -> Outcome | list[Outcome]:
    """The validation server's messages, on the events they name by index."""
    messages = json_body(response.body).get("validationMessages")
    if not isinstance(messages, list) or not messages:
        return None
    by_event: dict[int, list[str]] = {}
    general: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        text = (
            f"{message.get('validationCode', 'INVALID')} at {message.get('fieldPath', '?')}: "
            f"{message.get('description', '')}"
        )
        found = _INDEX.search(f"{message.get('fieldPath', '')} {message.get('description', '')}")
        if found and int(found.group(1)) < sent:
            by_event.setdefault(int(found.group(1)), []).append(text)
        else:
            general.append(text)
    status = response.status
    if general or not by_event:
        texts = [*general, *(text for found in by_event.values() for text in found)]
        return FatalDelivery("http_4xx", "GA4 validation: " + "; ".join(texts), status_code=status)
    return [
        FatalDelivery("http_4xx", "GA4 validation: " + "; ".join(by_event[i]), status_code=status)
        if i in by_event
        else None
        for i in range(sent)
    ]


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    """2xx is all Google ever says for a received request, except the validation server."""
    sent = len(sent_positions(request))
    verdict: Outcome | list[Outcome]
    if 200 <= response.status < 300:
        verdict = _validation(response, sent)
    else:
        verdict = classify_status(response)
    return with_rejected(request, verdict)


EVENT, USER, CONSENT = "Event", "User", "Consent"

BATCHING = Batching(max_count=100, max_bytes=1_000_000, max_age_seconds=5)

SEND_EVENT = ActionType(
    id="send_event",
    name="Send Event",
    description=(
        "Send an event to a GA4 web stream with the Measurement Protocol; events of one "
        "client are sent together, up to 25 per request."
    ),
    parameters=(
        Field(
            "event_name",
            "Event name",
            required=True,
            group=EVENT,
            help=(
                "E.g. purchase: up to 40 letters, digits and _, starting with a letter; "
                "spaces, dots and hyphens become _."
            ),
        ),
        Field(
            "event_params",
            "Event parameters",
            "map",
            group=EVENT,
            help=(
                "E.g. transaction_id, value, currency; session_id and engagement_time_msec "
                "make the event show in Realtime reports. At most 25."
            ),
        ),
        Field("items", "Items", "list", group=EVENT, help="Ecommerce items, a JSON array."),
        Field(
            "event_time",
            "Event time",
            group=EVENT,
            default="",
            help="Unix time (s, ms or µs) or ISO 8601; by default when Sluice received it.",
        ),
        Field(
            "client_id",
            "Client ID",
            group=USER,
            help="The GA client ID (from the _ga cookie); by default tealium_visitor_id.",
        ),
        Field("user_id", "User ID", group=USER, help="Your own ID for a signed-in user."),
        Field(
            "user_properties",
            "User properties",
            "map",
            group=USER,
            help="Names up to 24 characters, text values up to 36; at most 25.",
        ),
        Field(
            "consent_ad_user_data",
            "Consent: ad user data",
            group=CONSENT,
            enum=CONSENT_VALUES,
            help="Whether the user's data may be sent to Google for advertising.",
        ),
        Field(
            "consent_ad_personalization",
            "Consent: ad personalization",
            group=CONSENT,
            enum=CONSENT_VALUES,
            help="Whether the user's data may be used for personalised advertising.",
        ),
        *batch_fields(BATCHING),
    ),
    build=build_send_event,
    classify=classify,
    consent_categories=("analytics",),
    batching=BATCHING,
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#f9ab00"/>
  <rect x="38" y="12" width="12" height="40" rx="6" fill="#ffffff"/>
  <rect x="24" y="26" width="12" height="26" rx="6" fill="#ffffff" opacity="0.85"/>
  <circle cx="16" cy="46" r="6" fill="#ffffff" opacity="0.7"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="google_analytics_4",
    name="Google Analytics 4 Measurement Protocol",
    description=(
        "Send server-side events to a Google Analytics 4 web stream with the Measurement "
        "Protocol: purchases, refunds, leads and other events the browser never sees."
    ),
    configuration=(
        Field(
            "measurement_id",
            "Measurement ID",
            required=True,
            group="Credentials",
            help="The web stream's ID, G-XXXXXXXXXX (Admin > Data streams > your stream).",
        ),
        Field(
            "api_secret",
            "API secret",
            required=True,
            secret=True,
            group="Credentials",
            help="A Measurement Protocol API secret of that stream (same page, Create).",
        ),
        Field(
            "validate_with_debug_endpoint",
            "Validate only (debug endpoint)",
            "boolean",
            default=False,
            group="Advanced",
            help=(
                "Send to /debug/mp/collect: Google answers what is wrong with each event but "
                "records nothing. For testing a setup; switch off for real traffic."
            ),
        ),
        Field(
            "base_url",
            "Collection endpoint",
            "url",
            default=DEFAULT_BASE_URL,
            group="Advanced",
            help=(
                "https://www.google-analytics.com; https://region1.google-analytics.com "
                "collects in the EU."
            ),
        ),
    ),
    actions=(SEND_EVENT,),
    what_you_need=(
        "A Google Analytics 4 property with a web data stream, and its measurement ID.",
        "A Measurement Protocol API secret created for that stream (Editor role or above).",
        "The GA client ID of each visitor (the _ga cookie), or the Tealium visitor ID.",
        "Google answers 2xx even to invalid events: validate a new setup with the debug option.",
    ),
    resources=(
        Resource("Measurement Protocol reference", f"{DOCS}/reference"),
        Resource("Send Measurement Protocol events", f"{DOCS}/sending-events"),
        Resource("Validate events", f"{DOCS}/validating-events"),
        Resource("Generate API secrets", "https://support.google.com/analytics/answer/9814495"),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
