"""Braze: track users (attributes, custom events, purchases) and identify alias-only users.

Vendor docs used: the endpoints https://www.braze.com/docs/api/endpoints/user_data/post_user_track/
and .../post_user_identify/; the event, purchase and user attributes objects under
https://www.braze.com/docs/api/objects_filters/; rate limits, batching and ``X-RateLimit-*``
headers https://www.braze.com/docs/api/api_limits/; errors https://www.braze.com/docs/api/errors/;
instances https://www.braze.com/docs/api/basics/#endpoints.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

from sluice.connectors.batching import Batch, BatchRequest, pack, sent_positions, with_rejected
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

DEFAULT_INSTANCE = "https://rest.iad-01.braze.com"
TRACK_LIMIT = 75  # objects of each kind (attributes, events, purchases) per /users/track call
IDENTIFY_LIMIT = 50  # aliases per /users/identify call
COMBINED_LIMIT = 50  # objects of all kinds per call on Monthly Active Users CY 24-25 plans
IDENTIFIER_TYPES = ("external_id", "braze_id", "user_alias", "email", "phone")
RESERVED_PROPERTIES = frozenset({"time", "event_name"})
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CURRENCY = re.compile(r"^[A-Z]{3}$")
DOCS = "https://www.braze.com/docs/api"
ATTRIBUTES_HELP = "Profile attributes to set: first_name, email, country, or custom ones."
PROPERTIES_HELP = "Properties to record with it; names must not start with $."
TIME_HELP = "When it happened (ISO 8601); by default when Sluice received the event."
EXTERNAL_ID_HELP = "The identified user's external ID, e.g. your customer number."


@dataclass
class BrazeRequest(BatchRequest):
    """A request that remembers where each object of its arrays came from.

    Braze reports a rejected object as ``{"input_array", "index"}``; ``origins`` maps each
    array to the positions (in ``items``) of the inputs its objects came from, so
    ``classify`` can name the event.
    """

    origins: dict[str, list[int]] = field(default_factory=dict)


def _base(ctx: BuildContext) -> str:
    return (ctx.base_url or DEFAULT_INSTANCE).rstrip("/")


def _headers(ctx: BuildContext) -> dict[str, str]:
    key = ctx.config.get("api_key")
    if is_blank(key):
        raise FatalDelivery("auth", "Braze: no REST API key is configured")
    return {"Authorization": f"Bearer {str(key).strip()}"}


def _identity(params: Mapping[str, Any]) -> dict[str, Any]:
    """The user identifier object every Braze object starts with."""
    kind = params.get("identifier_type") or "external_id"
    if kind not in IDENTIFIER_TYPES:
        raise MappingError("identifier_type", f"must be one of {', '.join(IDENTIFIER_TYPES)}")
    value = require_text(params, "user_id").strip()
    if kind == "user_alias":
        label = params.get("alias_label")
        if is_blank(label):
            raise MappingError("alias_label", "is required when the identifier is a user alias")
        return {"user_alias": {"alias_name": value, "alias_label": as_text(label, "alias_label")}}
    if kind == "email":
        value = value.lower()
        if not _EMAIL.match(value):
            raise MappingError("user_id", "is not an email address")
    elif kind == "phone":
        value = re.sub(r"[\s().-]", "", value)
        if not _E164.match(value):
            raise MappingError("user_id", "must be a phone number in E.164 form, e.g. +15555550100")
    return {kind: value}


def _time(event: ActionInput) -> str:
    """ISO 8601 time of the event: the mapped ``event_time``, else when Sluice received it."""
    value = event.params.get("event_time")
    if is_blank(value):
        value = event.data.get("received_at")
    if is_blank(value):
        return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text = as_text(value, "event_time").strip()
    try:
        epoch = float(text)  # a string parameter: mapped numbers arrive as text
    except ValueError:
        try:
            datetime.fromisoformat(text)
        except ValueError as exc:
            raise MappingError("event_time", "must be ISO 8601 or epoch seconds") from exc
        return text
    moment = datetime.fromtimestamp(epoch / 1000 if epoch > 1e11 else epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _properties(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    props = map_param(params, name)
    for key in props:
        if not key or len(key) > 255 or key.startswith("$") or key in RESERVED_PROPERTIES:
            raise MappingError(
                name,
                f"property name {key[:60]!r} is not allowed (1-255 characters, no leading $, "
                "not time or event_name)",
            )
    return props


def _number(params: Mapping[str, Any], name: str) -> float:
    value = params.get(name)  # the engine already coerced mapped text to a number
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MappingError(name, "must be a number")
    return float(value)


def _purchase(params: Mapping[str, Any], base: dict[str, Any]) -> dict[str, Any]:
    currency = require_text(params, "currency").strip().upper()
    if not _CURRENCY.match(currency):
        raise MappingError("currency", "must be an ISO 4217 currency code such as USD")
    purchase = {
        **base,
        "product_id": require_text(params, "product_id").strip()[:255],
        "currency": currency,
        "price": _number(params, "price"),
    }
    if not is_blank(params.get("quantity")):
        quantity = _number(params, "quantity")
        if quantity != int(quantity) or not 1 <= quantity <= 100:
            raise MappingError("quantity", "must be a whole number from 1 to 100")
        purchase["quantity"] = int(quantity)
    return purchase


def _track_objects(event: ActionInput) -> dict[str, dict[str, Any]]:
    """The attributes, event and purchase objects one input becomes (at least one)."""
    params = event.params
    who = _identity(params)
    flag = params.get("update_existing_only")
    only = {} if flag is None else {"_update_existing_only": bool(flag)}
    attributes = map_param(params, "attributes")
    has_event = not is_blank(params.get("event_name"))
    has_purchase = not is_blank(params.get("product_id"))
    objects: dict[str, dict[str, Any]] = {}
    # With nothing else mapped, an attributes object holding only the identifier still
    # creates (or touches) the user profile.
    if attributes or not (has_event or has_purchase):
        objects["attributes"] = {**attributes, **who, **only}
    if has_event or has_purchase:
        base = {**who, "time": _time(event)}
        if not is_blank(params.get("app_id")):
            base["app_id"] = as_text(params["app_id"], "app_id")
        if has_event:
            props = _properties(params, "event_properties")
            name = as_text(params["event_name"], "event_name").strip()
            objects["events"] = {**base, "name": name, **({"properties": props} if props else {})}
            objects["events"].update(only)
        if has_purchase:
            purchase = _purchase(params, base)
            props = _properties(params, "purchase_properties")
            objects["purchases"] = {**purchase, **({"properties": props} if props else {}), **only}
    return objects


def _object_limit(config: Mapping[str, Any]) -> int | None:
    """Objects per call across the three arrays; None: 75 of each kind."""
    plan = config.get("request_limits") or "standard"
    return COMBINED_LIMIT if plan == "mau_cy24_25" else None


ObjectsFn = Callable[[ActionInput], dict[str, dict[str, Any]]]


def _build_batches(
    ctx: BuildContext,
    inputs: Sequence[ActionInput],
    path: str,
    objects_of: ObjectsFn,
    per_kind: int,
    combined: int | None = None,
) -> list[HttpRequest]:
    """Pack each input's objects into as few requests as Braze's per-array limits allow."""

    def fits(batch: Batch[dict[str, dict[str, Any]]], objects: dict[str, dict[str, Any]]) -> bool:
        counts = Counter(kind for entry in batch.entries for kind in entry)
        if any(counts[kind] >= per_kind for kind in objects):
            return False
        return combined is None or sum(counts.values()) + len(objects) <= combined

    batches = pack(inputs, lambda event: (objects_of(event), 0), fits=fits)
    return [_seal(ctx, path, batch) for batch in batches]


def _seal(ctx: BuildContext, path: str, batch: Batch[dict[str, dict[str, Any]]]) -> BrazeRequest:
    arrays: dict[str, list[dict[str, Any]]] = {}
    origins: dict[str, list[int]] = {}
    for pos, objects in zip(batch.sent, batch.entries, strict=True):
        for kind, obj in objects.items():
            arrays.setdefault(kind, []).append(obj)
            origins.setdefault(kind, []).append(pos)
    return BrazeRequest(
        "POST",
        f"{_base(ctx)}{path}",
        {"Content-Type": JSON_CONTENT_TYPE, **_headers(ctx)},
        dump_json(arrays, "body"),
        tuple(batch.items),
        frozenset({"authorization"}),
        rejected=batch.rejected,
        origins=origins,
    )


def build_track(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    limit = _object_limit(ctx.config)
    return _build_batches(ctx, inputs, "/users/track", _track_objects, TRACK_LIMIT, limit)


def _alias_object(event: ActionInput) -> dict[str, dict[str, Any]]:
    params = event.params
    alias = {
        "alias_name": require_text(params, "alias_name").strip(),
        "alias_label": require_text(params, "alias_label").strip(),
    }
    external_id = require_text(params, "external_id").strip()
    return {"aliases_to_identify": {"external_id": external_id, "user_alias": alias}}


def build_identify(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    return _build_batches(ctx, inputs, "/users/identify", _alias_object, IDENTIFY_LIMIT)


def _json(body: bytes) -> Any:
    try:
        return orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return None


def _object_errors(request: HttpRequest, errors: list[Any], status: int) -> list[Outcome] | None:
    """Per-item outcomes for the objects Braze names in ``errors``; None when it names none."""
    origins = request.origins if isinstance(request, BrazeRequest) else {}
    problems: dict[int, list[str]] = {}
    for error in errors:
        if not isinstance(error, dict):
            continue  # a bare message names no object: the rest was processed
        array, index = error.get("input_array"), error.get("index")
        positions = origins.get(str(array), [])
        if isinstance(index, int) and 0 <= index < len(positions):
            text = error.get("type") or error.get("message") or "rejected"
            problems.setdefault(positions[index], []).append(f"{array}[{index}]: {text}")
    if not problems:
        return None
    return [
        FatalDelivery("http_4xx", "Braze rejected " + "; ".join(problems[pos]), status_code=status)
        if pos in problems
        else None
        for pos in sent_positions(request)
    ]


def _retry_after(response: HttpResponse) -> float | None:
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    reset = response.headers.get("x-ratelimit-reset")  # UTC epoch seconds
    try:
        return max(0.0, float(reset) - time.time()) if reset else None
    except ValueError:
        return None


def _judge(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    status = response.status
    body = _json(response.body)
    body = body if isinstance(body, dict) else {}
    message = str(body.get("message") or "").strip()
    errors: list[Any] = body["errors"] if isinstance(body.get("errors"), list) else []
    if 200 <= status < 300:
        if message and message not in ("success", "queued"):
            return FatalDelivery("http_4xx", f"Braze: {message}", status_code=status)
        return _object_errors(request, errors, status) if errors else None
    detail = "; ".join(str(e) for e in errors[:5])
    text = f"Braze: HTTP {status}" + (f": {message}" if message else "")
    text += f" ({detail})" if detail else ""
    if status == 429:
        return RetryableDelivery(
            "rate_limit", text, status_code=status, retry_after=_retry_after(response)
        )
    if status in (401, 403, 404):
        # Braze answers 404 for an unknown REST API key: a credentials problem, like 401.
        hint = "check the REST API key, its permissions and the instance (REST endpoint)"
        return FatalDelivery("auth", f"{text}; {hint}", status_code=status)
    outcome = classify_status(response)
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category, text, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category if outcome else "http_4xx", text, status_code=status)


def classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return with_rejected(request, _judge(request, response))


def _batch_fields(limit: int) -> tuple[Field, ...]:
    size_help = f"Send a batch once it holds this many events (at most {limit})."
    age_help = "Send a batch at the latest this long after its first event (at most 10)."
    return (
        Field("max_batch_size", "Maximum batch size", "integer", group=BATCH, help=size_help),
        Field(
            "max_batch_age_seconds", "Maximum batch age (s)", "number", group=BATCH, help=age_help
        ),
    )


BATCH, USER, EVENT, BUY, OPTIONS = "Batching", "User", "Custom event", "Purchase", "Options"

TRACK_USER = ActionType(
    id="track_user",
    name="Track User",
    description=(
        "Update a user profile's attributes and record a custom event and a purchase for the "
        "user, batched up to 75 of each per call to Braze."
    ),
    parameters=(
        Field(
            "identifier_type",
            "Identify the user by",
            required=True,
            group=USER,
            default="external_id",
            enum=IDENTIFIER_TYPES,
            help="Which Braze identifier the User identifier holds; external_id is the usual one.",
        ),
        Field(
            "user_id",
            "User identifier",
            required=True,
            group=USER,
            help="The external ID, Braze ID, alias name, email or E.164 phone number of the user.",
        ),
        Field("alias_label", "Alias label", group=USER, help="Needed when the user is an alias."),
        Field("attributes", "User attributes", "map", group="Attributes", help=ATTRIBUTES_HELP),
        Field(
            "update_existing_only",
            "Update existing users only",
            "boolean",
            group="Attributes",
            help="Only update users Braze knows; set false to create alias-only users.",
        ),
        Field("event_name", "Custom event name", group=EVENT, help="Empty: record no event."),
        Field("event_properties", "Event properties", "map", group=EVENT, help=PROPERTIES_HELP),
        Field(
            "product_id",
            "Purchase product ID",
            group=BUY,
            default="",
            help="Records a purchase of this product; empty records none.",
        ),
        Field("currency", "Currency", group=BUY, help="ISO 4217 code, e.g. USD or EUR."),
        Field("price", "Price", "number", group=BUY, help="The unit price in the currency."),
        Field("quantity", "Quantity", "integer", group=BUY, help="1 to 100; default 1."),
        Field("purchase_properties", "Purchase properties", "map", group=BUY, help=PROPERTIES_HELP),
        Field("event_time", "Event time", group=OPTIONS, default="", help=TIME_HELP),
        Field("app_id", "App identifier", group=OPTIONS, help="The Braze app identifier, if any."),
        *_batch_fields(TRACK_LIMIT),
    ),
    build=build_track,
    classify=classify,
    consent_categories=("engagement",),
    batching=Batching(max_count=TRACK_LIMIT, max_bytes=4_000_000, max_age_seconds=10),
    # Braze counts every event object it receives: a retry after a timeout could record
    # (and trigger campaigns on) the same event twice.
    idempotent=False,
)

IDENTIFY_USER = ActionType(
    id="identify_user",
    name="Identify User",
    description=(
        "Merge an alias-only user (e.g. an anonymous visitor) into the user with an external "
        "ID, batched up to 50 per call to Braze."
    ),
    parameters=(
        Field("external_id", "External ID", required=True, group=USER, help=EXTERNAL_ID_HELP),
        Field("alias_name", "Alias name", required=True, group=USER, help="E.g. the visitor ID."),
        Field("alias_label", "Alias label", required=True, group=USER, help="E.g. visitor_id."),
        *_batch_fields(IDENTIFY_LIMIT),
    ),
    build=build_identify,
    classify=classify,
    consent_categories=("engagement",),
    batching=Batching(max_count=IDENTIFY_LIMIT, max_bytes=1_000_000, max_age_seconds=10),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#300266"/>
  <text x="32" y="44" text-anchor="middle" font-family="Helvetica, Arial, sans-serif"
        font-size="34" font-weight="700" fill="#ffffff">B</text>
</svg>
"""

CONNECTOR = ConnectorType(
    id="braze",
    name="Braze",
    description=(
        "Send user attributes, custom events and purchases to Braze, and merge anonymous "
        "(alias-only) users into known ones, through the Braze REST API."
    ),
    configuration=(
        Field(
            "api_key",
            "REST API key",
            required=True,
            secret=True,
            group="Credentials",
            help="A key from Settings > APIs and Identifiers with users.track and users.identify.",
        ),
        Field(
            "base_url",
            "REST endpoint",
            "url",
            default=DEFAULT_INSTANCE,
            group="Credentials",
            help=(
                "Your Braze instance's REST endpoint, shown beside the API key: US-01 is "
                "https://rest.iad-01.braze.com, US-02 to US-08 are rest.iad-02 ... rest.iad-08, "
                "EU-01 is https://rest.fra-01.braze.eu and EU-02 https://rest.fra-02.braze.eu."
            ),
        ),
        Field(
            "request_limits",
            "Request limits",
            group="Advanced",
            default="standard",
            enum=("standard", "mau_cy24_25"),
            help=(
                "standard: up to 75 attributes, 75 events and 75 purchases per call; "
                "mau_cy24_25: up to 50 objects combined, for Monthly Active Users CY 24-25 plans."
            ),
        ),
    ),
    actions=(TRACK_USER, IDENTIFY_USER),
    what_you_need=(
        "A Braze workspace and its REST endpoint (your instance, e.g. US-01 or EU-01).",
        "A REST API key with the users.track and users.identify permissions.",
        "A stable user identifier: the external ID you use in Braze, or a user alias.",
    ),
    resources=(
        Resource("Track users", f"{DOCS}/endpoints/user_data/post_user_track/"),
        Resource("Identify users", f"{DOCS}/endpoints/user_data/post_user_identify/"),
        Resource("API rate limits", f"{DOCS}/api_limits/"),
        Resource("REST endpoints by instance", f"{DOCS}/basics/#endpoints"),
        Resource("API errors and responses", f"{DOCS}/errors/"),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_INSTANCE,
)
