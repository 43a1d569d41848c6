"""HubSpot: create or update CRM contacts by email, up to 100 per request.

Vendor docs used: Upsert contacts (``POST /crm/v3/objects/contacts/batch/upsert`` with
``inputs`` of ``{"idProperty": "email", "id", "properties", "objectWriteTraceId"}``, at most
100 per batch), https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/batch/upsert-contacts;
error handling (the error body ``{"status", "message", "correlationId", "category",
"errors"}``, 207 multi-status answers, 423 locks of 2 s, 477 with ``Retry-After``, 429),
https://developers.hubspot.com/docs/api-reference/error-handling; rate limits and their
``X-HubSpot-RateLimit-*`` headers, https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details;
private app access tokens, https://developers.hubspot.com/docs/guides/apps/private-apps/overview.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from sluice.connectors.batching import BatchRequest, pack
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
from sluice.connectors.helpers import as_text, dump_json, is_blank, map_param, require_text
from sluice.errors import DeliveryError, FatalDelivery, MappingError, RetryableDelivery

DEFAULT_BASE_URL = "https://api.hubapi.com"
MAX_INPUTS = 100  # inputs per batch upsert
MAX_BYTES = 3_000_000  # Sluice's own cap: HubSpot publishes only the input count
LOCK_SECONDS = 2.0  # HubSpot's 423 locks last 2 s
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass
class HubSpotRequest(BatchRequest):
    # Positions in ``items`` of each input, by its objectWriteTraceId (one input may carry
    # several events for the same email), and the email of each trace.
    traces: dict[str, list[int]] = field(default_factory=dict)
    emails: dict[str, str] = field(default_factory=dict)


def email(value: Any) -> str:
    """An email address as HubSpot matches it: trimmed and lower-cased."""
    text = as_text(value, "email").strip().lower()
    if not _EMAIL.match(text):
        raise MappingError("email", "is not an email address")
    return text


def property_value(name: str, value: Any) -> str:
    """A property value as HubSpot takes it: text; several options are joined with ``;``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list | tuple):
        return ";".join(property_value(name, item) for item in value)
    if isinstance(value, dict):
        raise MappingError("properties", f"{name!r} must be text, a number, true/false or a list")
    return as_text(value, "properties")


def _properties(params: Mapping[str, Any], address: str) -> dict[str, str]:
    properties = {
        name: property_value(name, value)
        for name, value in map_param(params, "properties").items()
        if value is not None  # an unmapped value must not clear what HubSpot has
    }
    properties["email"] = address
    return properties


def _token(config: Mapping[str, Any]) -> str:
    token = config.get("access_token")
    if is_blank(token):
        raise FatalDelivery("auth", "HubSpot: set the private app's access token")
    return str(token).strip()


def _contact(event: ActionInput) -> tuple[tuple[str, dict[str, str], str], int]:
    """An input's email, properties and trace ID (only counts limit a batch)."""
    address = email(require_text(event.params, "email"))
    return (address, _properties(event.params, address), event.idempotency_key), 0


def build_upsert(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {_token(ctx.config)}"}
    base = (ctx.base_url or DEFAULT_BASE_URL).rstrip("/")
    requests: list[HttpRequest] = []
    for batch in pack(inputs, _contact):  # the engine hands over at most MAX_INPUTS: one batch
        request = HubSpotRequest(
            "POST",
            f"{base}/crm/v3/objects/contacts/batch/upsert",
            headers,
            items=tuple(batch.items),
            sensitive_headers=frozenset({"authorization"}),
            rejected=batch.rejected,
        )
        by_email: dict[str, dict[str, Any]] = {}
        for position, (address, properties, trace) in zip(batch.sent, batch.entries, strict=True):
            known = by_email.get(address)
            if known is None:
                # HubSpot refuses a batch naming one email twice: later events merge into one.
                by_email[address] = {"idProperty": "email", "id": address, "properties": properties}
                by_email[address]["objectWriteTraceId"] = trace
                request.traces[trace] = [position]
                request.emails[trace] = address
            else:
                known["properties"].update(properties)
                request.traces[known["objectWriteTraceId"]].append(position)
        request.body = dump_json({"inputs": list(by_email.values())}, "properties")
        requests.append(request)
    return requests


def _document(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def _strings(value: Any) -> list[str]:
    """Every text inside an error's ``id`` and ``context``, to find the inputs it names."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    return []


def _describe(error: Mapping[str, Any]) -> str:
    """An error as one line: its category, message, and the properties it names."""
    text = f"HubSpot {error.get('category') or 'error'}: {error.get('message') or 'no message'}"
    names: list[str] = []
    for detail in [error, *(e for e in error.get("errors") or [] if isinstance(e, dict))]:
        context = detail.get("context")
        if isinstance(context, dict):
            names.extend(_strings(context.get("propertyName")))
    if names:
        text += f" (property {', '.join(dict.fromkeys(names))})"
    if error.get("correlationId"):
        text += f"; correlationId {error['correlationId']}"
    return text


def _rate_limit_wait(response: HttpResponse, doc: Mapping[str, Any]) -> float | None:
    """Seconds to wait after a 429: Retry-After, else the rate-limit window in the headers."""
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if retry_after is not None:
        return retry_after
    if doc.get("policyName") == "DAILY":
        return 3600.0  # the daily limit resets at midnight in the account's time zone
    interval = response.headers.get("x-hubspot-ratelimit-interval-milliseconds", "")
    return int(interval) / 1000 if interval.isdigit() else None


def _whole(response: HttpResponse, doc: Mapping[str, Any]) -> DeliveryError:
    """What a failed request means for every contact in it."""
    status = response.status
    message = _describe(doc) if doc else f"HubSpot: HTTP {status}"
    if status == 401:
        message += "; check the private app's access token"
        return FatalDelivery("auth", message, status_code=status)
    if status == 403:
        message += "; the private app needs the crm.objects.contacts.write scope"
        return FatalDelivery("auth", message, status_code=status)
    if status == 429:
        wait = _rate_limit_wait(response, doc)
        return RetryableDelivery("rate_limit", message, status_code=status, retry_after=wait)
    if status == 423:
        return RetryableDelivery("http_4xx", message, status_code=status, retry_after=LOCK_SECONDS)
    if status == 477:  # the account is moving between data centres
        wait = parse_retry_after(response.headers.get("retry-after"))
        return RetryableDelivery("http_4xx", message, status_code=status, retry_after=wait)
    outcome = classify_status(response) or FatalDelivery("http_4xx", message, status_code=status)
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category, message, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category, message, status_code=status)


def _named(doc: Mapping[str, Any], traces: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """The errors naming an input (by trace ID or email), and the messages of the others."""
    named: dict[str, str] = {}
    others: list[str] = []
    for error in doc.get("errors") or []:
        if not isinstance(error, dict):
            continue
        found = {
            traces[key]
            for text in _strings([error.get("id"), error.get("context")])
            for key in (text, text.lower())
            if key in traces
        }
        message = _describe({**doc, **error})
        for trace in found:
            named.setdefault(trace, message)
        if not found:
            others.append(message)
    return named, others


def classify_upsert(request: HttpRequest, response: HttpResponse) -> list[Outcome]:
    if not isinstance(request, HubSpotRequest):
        return [classify_status(response)] * len(request.items)
    outcomes: list[Outcome] = [None] * len(request.items)
    doc = _document(response.body)
    status = response.status
    ok = 200 <= status < 300
    if status == 207 or not ok or doc.get("errors"):
        # Find the inputs the errors name: by objectWriteTraceId, or by email.
        keys = {
            **{address: t for t, address in request.emails.items()},
            **{t: t for t in request.traces},
        }
        named, others = _named(doc, keys)
        written = {
            r.get("objectWriteTraceId") for r in doc.get("results") or [] if isinstance(r, dict)
        }
        whole = None if ok else _whole(response, doc)
        for trace, positions in request.traces.items():
            outcome: Outcome = whole
            if trace in named:
                outcome = FatalDelivery("http_4xx", named[trace], status_code=status)
            elif ok and others and trace not in written:
                outcome = FatalDelivery("http_4xx", others[0], status_code=status)
            elif status == 400 and named:
                # HubSpot refused the whole batch because of another input: nothing was written.
                text = "HubSpot refused the batch because of another contact in it; sent again"
                outcome = RetryableDelivery("http_4xx", text, status_code=status)
            for position in positions:
                outcomes[position] = outcome
    for position, text in request.rejected.items():
        outcomes[position] = FatalDelivery("mapping", text)
    return outcomes


CREATE_OR_UPDATE_CONTACT = ActionType(
    id="create_or_update_contact",
    name="Create or Update Contact",
    description=(
        "Create a HubSpot contact, or update the one with the same email address; contacts "
        "are sent in batches of up to 100."
    ),
    parameters=(
        Field(
            "email",
            "Email",
            required=True,
            group="Contact",
            help="Identifies the contact: HubSpot updates the contact with this email, or "
            "creates one.",
        ),
        Field(
            "properties",
            "Contact properties",
            "map",
            group="Contact",
            help="Values by HubSpot internal property name, e.g. firstname, lastname, phone, "
            "lifecyclestage; a list fills a multiple-checkbox property.",
        ),
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group="Batching",
            help=f"Send a batch once it holds this many contacts (at most {MAX_INPUTS}).",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (s)",
            "number",
            group="Batching",
            help="Send a batch at the latest this long after its first contact (at most 10).",
        ),
    ),
    build=build_upsert,
    classify=classify_upsert,
    consent_categories=("crm",),
    batching=Batching(max_count=MAX_INPUTS, max_bytes=MAX_BYTES, max_age_seconds=10),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#ff7a59"/>
  <circle cx="36" cy="36" r="9" fill="none" stroke="#ffffff" stroke-width="5"/>
  <path d="M36 27V15M29 42l-9 8M20 19l10 10" stroke="#ffffff" stroke-width="4"
        stroke-linecap="round"/>
  <circle cx="36" cy="13" r="4" fill="#ffffff"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="hubspot",
    name="HubSpot",
    description=(
        "Keep HubSpot CRM contacts up to date from your event data: create new contacts "
        "and update existing ones, matched by email."
    ),
    configuration=(
        Field(
            "access_token",
            "Private app access token",
            required=True,
            secret=True,
            group="Credentials",
            help="From Settings > Integrations > Private Apps; starts with pat-.",
        ),
    ),
    actions=(CREATE_OR_UPDATE_CONTACT,),
    what_you_need=(
        "A HubSpot account where you may create private apps (a super admin).",
        "A private app with the crm.objects.contacts.write scope, and its access token.",
        "The internal names of the contact properties to fill (Settings > Properties).",
    ),
    resources=(
        Resource(
            "Upsert contacts",
            "https://developers.hubspot.com/docs/api-reference/legacy/crm/objects/contacts/"
            "batch/upsert-contacts",
        ),
        Resource(
            "Error handling", "https://developers.hubspot.com/docs/api-reference/error-handling"
        ),
        Resource(
            "API usage and rate limits",
            "https://developers.hubspot.com/docs/guides/apps/api-usage/usage-details",
        ),
        Resource(
            "Private apps", "https://developers.hubspot.com/docs/guides/apps/private-apps/overview"
        ),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
