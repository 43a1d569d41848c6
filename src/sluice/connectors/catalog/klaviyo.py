"""Klaviyo: track events and create or update profiles through the JSON:API REST API.

Vendor docs used: Create Event (``POST /api/events``, 202, ``unique_id`` deduplication per
profile and metric, at most 400 properties and 5 MB, metric names under 128 characters),
https://developers.klaviyo.com/en/reference/create_event; Create or Update Profile
(``POST /api/profile-import``, 201 created or 200 updated, null clears a field, 100 KB),
https://developers.klaviyo.com/en/reference/create_or_update_profile; the API overview
(``Authorization: Klaviyo-API-Key``, the ``revision`` header, JSON:API errors with
``source.pointer``, 429 with ``Retry-After``), https://developers.klaviyo.com/en/reference/api_overview;
the OpenAPI documents of both endpoints, https://github.com/klaviyo/openapi.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson

from sluice.connectors.definition import (
    ActionInput,
    ActionType,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
    HttpResponse,
    Outcome,
    Resource,
    classify_status,
)
from sluice.connectors.helpers import as_text, dump_json, is_blank, map_param, require_text
from sluice.engine.transforms import e164, to_number, unix_timestamp
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DEFAULT_BASE_URL = "https://a.klaviyo.com"
REVISION = "2026-07-15"
JSON_API = "application/vnd.api+json"
MAX_EVENT_PROPERTIES = 400
MAX_EVENT_BYTES = 5_000_000
MAX_PROFILE_BYTES = 100_000
MAX_METRIC_NAME = 127  # "less than 128 characters"
IDENTIFIERS = ("email", "phone_number", "external_id")
# Optional profile attributes: name, title, help.
PROFILE_TEXT = (
    ("first_name", "First name", "The person's first name."),
    ("last_name", "Last name", "The person's last name."),
    ("organization", "Organization", "The company the person works for."),
    ("title", "Job title", "The person's job title."),
    ("locale", "Locale", "Language and country, e.g. en-US."),
    ("image", "Image URL", "A picture of the person."),
)
LOCATION = (
    ("address1", "Address line 1", "Street address."),
    ("address2", "Address line 2", "More of the address."),
    ("city", "City", "The person's city."),
    ("region", "Region", "State, province or region."),
    ("zip", "Postal code", "Postcode or ZIP."),
    ("country", "Country", "The person's country."),
    ("timezone", "Time zone", "An IANA time zone, e.g. Europe/Paris."),
    ("ip", "IP address", "For Klaviyo's location lookup."),
)


def email(value: Any, parameter: str) -> str:
    # Klaviyo validates addresses itself and names the field when one is wrong.
    return as_text(value, parameter).strip().lower()


def phone(value: Any, parameter: str) -> str:
    """An E.164 number, as Klaviyo requires, from a number written with a country code."""
    try:
        return e164(as_text(value, parameter))
    except ValueError as exc:
        raise MappingError(parameter, str(exc)) from None


def iso_time(value: Any, parameter: str) -> str:
    """ISO 8601 in UTC, to the second, from Unix seconds or milliseconds or ISO text."""
    try:
        seconds = unix_timestamp(value)
    except ValueError as exc:
        raise MappingError(parameter, str(exc)) from None
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def identifiers(params: Mapping[str, Any]) -> dict[str, str]:
    """The profile's identifiers: the main one by its type, plus any others mapped."""
    kind = params.get("identifier_type") or "email"
    if kind not in IDENTIFIERS:
        raise MappingError("identifier_type", f"must be one of {', '.join(IDENTIFIERS)}")
    found = {kind: ("identifier", params.get("identifier"))}
    for name in IDENTIFIERS:
        if name != kind and not is_blank(params.get(name)):
            found[name] = (name, params[name])
    if is_blank(found[kind][1]):
        raise MappingError("identifier", "is required but has no value for this event")
    result: dict[str, str] = {}
    for name, (parameter, value) in found.items():
        if name == "email":
            result[name] = email(value, parameter)
        elif name == "phone_number":
            result[name] = phone(value, parameter)
        else:
            result[name] = as_text(value, parameter).strip()
    return result


def _headers(config: Mapping[str, Any]) -> dict[str, str]:
    key = config.get("api_key")
    if is_blank(key):
        raise FatalDelivery("auth", "Klaviyo: set the private API key")
    return {
        "Authorization": f"Klaviyo-API-Key {str(key).strip()}",
        "revision": str(config.get("revision") or REVISION).strip(),
        "Content-Type": JSON_API,
        "Accept": JSON_API,
    }


def _request(ctx: BuildContext, path: str, payload: Any, index: int, limit: int) -> HttpRequest:
    body = dump_json(payload, "properties")
    if len(body) > limit:
        raise MappingError("properties", f"the request is {len(body)} bytes; Klaviyo takes {limit}")
    base = (ctx.base_url or DEFAULT_BASE_URL).rstrip("/")
    return HttpRequest(
        "POST", f"{base}{path}", _headers(ctx.config), body, (index,), frozenset({"authorization"})
    )


def _event(event: ActionInput) -> dict[str, Any]:
    params = event.params
    name = require_text(params, "metric_name").strip()
    if len(name) > MAX_METRIC_NAME:
        raise MappingError("metric_name", f"must be shorter than {MAX_METRIC_NAME + 1} characters")
    properties = map_param(params, "properties")
    if len(properties) > MAX_EVENT_PROPERTIES:
        raise MappingError("properties", f"Klaviyo takes at most {MAX_EVENT_PROPERTIES}")
    when = params.get("time")
    when = event.data.get("received_at") if is_blank(when) else when
    unique_id = params.get("unique_id")
    attributes: dict[str, Any] = {
        "properties": properties,
        "metric": {"data": {"type": "metric", "attributes": {"name": name}}},
        "profile": {"data": {"type": "profile", "attributes": identifiers(params)}},
        # Klaviyo records an event once per unique_id, profile and metric: retries are safe.
        "unique_id": event.idempotency_key
        if is_blank(unique_id)
        else as_text(unique_id, "unique_id"),
    }
    if not is_blank(when):
        attributes["time"] = iso_time(when, "time")
    if not is_blank(params.get("value")):
        try:
            attributes["value"] = to_number(params["value"])
        except ValueError as exc:
            raise MappingError("value", str(exc)) from None
    if not is_blank(params.get("value_currency")):
        attributes["value_currency"] = as_text(params["value_currency"], "value_currency").upper()
    return {"data": {"type": "event", "attributes": attributes}}


def build_create_event(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    return [
        _request(ctx, "/api/events", _event(event), index, MAX_EVENT_BYTES)
        for index, event in enumerate(inputs)
    ]


def _profile(params: Mapping[str, Any]) -> dict[str, Any]:
    # Only mapped values are sent: Klaviyo clears a field sent as null.
    attributes: dict[str, Any] = identifiers(params)
    for name, *_ in PROFILE_TEXT:
        if not is_blank(params.get(name)):
            attributes[name] = as_text(params[name], name).strip()
    location = {
        name: as_text(params[name], name).strip()
        for name, *_ in LOCATION
        if not is_blank(params.get(name))
    }
    if location:
        attributes["location"] = location
    properties = map_param(params, "properties")
    if properties:
        attributes["properties"] = properties
    return {"data": {"type": "profile", "attributes": attributes}}


def build_create_or_update_profile(
    ctx: BuildContext, inputs: Sequence[ActionInput]
) -> list[HttpRequest]:
    return [
        _request(ctx, "/api/profile-import", _profile(event.params), index, MAX_PROFILE_BYTES)
        for index, event in enumerate(inputs)
    ]


# The field a ``source.pointer`` names, by the pointer's last segment, as Sluice calls it.
_POINTED = {"name": "metric_name", "attributes": "identifier"}


def _errors(body: bytes) -> list[dict[str, Any]]:
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return []
    errors = doc.get("errors") if isinstance(doc, dict) else None
    return [e for e in errors if isinstance(e, dict)] if isinstance(errors, list) else []


def _describe(error: Mapping[str, Any]) -> str:
    text = f"{error.get('title') or error.get('code') or 'error'}"
    if error.get("detail") and error.get("detail") != error.get("title"):
        text += f": {error['detail']}"
    source = error.get("source")
    pointer = source.get("pointer") if isinstance(source, dict) else None
    if isinstance(pointer, str) and pointer.strip("/"):
        last = pointer.rstrip("/").rsplit("/", 1)[-1]
        text += f" (field {_POINTED.get(last, last)!r}, at {pointer})"
    return text


def classify(request: HttpRequest, response: HttpResponse) -> Outcome:
    """Klaviyo's answer: 2xx, or JSON:API ``errors`` naming the field at ``source.pointer``."""
    outcome = classify_status(response)
    if outcome is None:
        return None
    status = response.status
    errors = _errors(response.body)
    message = "Klaviyo: " + ("; ".join(_describe(e) for e in errors) or f"HTTP {status}")
    if status == 401:
        message += "; check the private API key"
    elif status == 403:
        message += "; the key needs the events:write and profiles:write scopes"
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category, message, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category, message, status_code=status)


def _text(name: str, title: str, help: str, group: str) -> Field:
    return Field(name, title, group=group, help=help)


PROFILE_KEYS = (
    Field(
        "identifier_type",
        "Identify the profile by",
        default="email",
        enum=IDENTIFIERS,
        group="Profile",
        help="Which identifier the Identifier parameter holds.",
    ),
    Field(
        "identifier",
        "Identifier",
        required=True,
        group="Profile",
        help="The profile's email address, phone number (with its country code) or external ID.",
    ),
    _text("email", "Email", "Also set the profile's email address.", "Profile"),
    _text(
        "phone_number", "Phone number", "Also set the phone number, e.g. +15005550006.", "Profile"
    ),
    _text("external_id", "External ID", "Also set your own ID of the customer.", "Profile"),
)

CREATE_EVENT = ActionType(
    id="create_event",
    name="Create Event",
    description="Track an event on a Klaviyo profile, to trigger flows and segment on it.",
    parameters=(
        Field(
            "metric_name",
            "Metric name",
            required=True,
            group="Event",
            help="The event's name in Klaviyo, e.g. Placed Order or Viewed Product.",
        ),
        Field(
            "properties",
            "Event properties",
            "map",
            group="Event",
            help=f"Values to keep with the event, at most {MAX_EVENT_PROPERTIES}.",
        ),
        Field("value", "Value", "number", group="Event", help="A monetary value, e.g. 42.5."),
        _text("value_currency", "Currency", "ISO 4217 code of the value, e.g. EUR.", "Event"),
        Field(
            "time",
            "Event time (Unix time)",
            "number",
            group="Event",
            help="Seconds since 1970 (try the unix_timestamp transform); by default when "
            "Sluice received the event.",
        ),
        _text(
            "unique_id",
            "Unique ID",
            "Klaviyo records one event per unique ID; by default the Sluice event and action.",
            "Event",
        ),
        *PROFILE_KEYS,
    ),
    build=build_create_event,
    classify=classify,
    consent_categories=("email",),
)

CREATE_OR_UPDATE_PROFILE = ActionType(
    id="create_or_update_profile",
    name="Create or Update Profile",
    description="Create a Klaviyo profile, or update the one with the same identifiers.",
    parameters=(
        *PROFILE_KEYS,
        *(_text(name, title, help, "Profile") for name, title, help in PROFILE_TEXT),
        *(_text(name, title, help, "Location") for name, title, help in LOCATION),
        Field(
            "properties",
            "Custom properties",
            "map",
            group="Custom properties",
            help="Custom profile properties by name; unmapped ones are left as they are.",
        ),
    ),
    build=build_create_or_update_profile,
    classify=classify,
    consent_categories=("email",),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#232426"/>
  <path d="M14 20h36l-8 12 8 12H14z" fill="#ffffff"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="klaviyo",
    name="Klaviyo",
    description=(
        "Send events and profile updates to Klaviyo, to trigger email and SMS flows and "
        "build segments from server-side data."
    ),
    configuration=(
        Field(
            "api_key",
            "Private API key",
            required=True,
            secret=True,
            group="Credentials",
            help="Starts with pk_; from Settings > API keys, with the Events and Profiles "
            "scopes set to full access.",
        ),
        Field(
            "revision",
            "API revision",
            default=REVISION,
            group="Advanced",
            help="The date of the Klaviyo API revision to use, sent as the revision header.",
        ),
    ),
    actions=(CREATE_EVENT, CREATE_OR_UPDATE_PROFILE),
    what_you_need=(
        "A Klaviyo account.",
        "A private API key with the events:write and profiles:write scopes.",
    ),
    resources=(
        Resource("Create Event", "https://developers.klaviyo.com/en/reference/create_event"),
        Resource(
            "Create or Update Profile",
            "https://developers.klaviyo.com/en/reference/create_or_update_profile",
        ),
        Resource("API overview", "https://developers.klaviyo.com/en/reference/api_overview"),
        Resource(
            "Rate limits", "https://developers.klaviyo.com/en/docs/rate_limits_and_error_handling"
        ),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
