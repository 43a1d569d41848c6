"""ClickSend: send SMS in batches and keep contact lists up to date (REST API v3).

Vendor docs used: the v3 introduction (HTTP Basic with the API username and key, the
``http_code``/``response_code``/``response_msg``/``data`` envelope, status codes),
https://developers.clicksend.com/docs/rest/v3; Send SMS (``POST /v3/sms/send`` with a
``messages`` array, ``to``/``from``/``body``/``custom_string``/``schedule``/``source``, a
``status`` per message in ``data.messages``), https://developers.clicksend.com/docs/messaging/sms;
contacts of a list (``POST /v3/lists/{list_id}/contacts``, ``PUT .../contacts/{contact_id}``),
https://developers.clicksend.com/docs/contacts/lists and
https://developers.clicksend.com/docs/contacts/contacts/.

ClickSend has no upsert: "Create or Update a Contact" updates the contact named by
``contact_id`` when the event carries one, and otherwise adds a new contact to the list. That
keeps one request per event; looking a contact up by phone first would take two.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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
from sluice.connectors.helpers import as_text, basic_auth, is_blank, json_request, require_text
from sluice.engine.transforms import e164, unix_timestamp
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DEFAULT_BASE_URL = "https://rest.clicksend.com"
MAX_MESSAGES = 1000  # messages per /v3/sms/send request
MAX_BYTES = 4_000_000  # Sluice's own cap: ClickSend publishes only the count
MAX_CUSTOM_STRING = 50
_SENDER_ID = re.compile(r"^[A-Za-z0-9]{1,11}$")
_QUEUED = frozenset({"SUCCESS", "QUEUED"})

TO_HELP = "The mobile number with its country code, e.g. +61411111111 or 0061 411 111 111."
BODY_HELP = "The text to send, usually a template; long texts are sent in several parts."
FROM_HELP = (
    "A dedicated number or an alphanumeric sender ID of up to 11 characters; empty uses the "
    "account's default sender."
)
CUSTOM_STRING_HELP = (
    f"Your reference (at most {MAX_CUSTOM_STRING} characters), echoed in delivery reports "
    "and replies."
)
SCHEDULE_HELP = (
    "Send later, at this time in seconds since 1970 (try the unix_timestamp transform); "
    "empty sends now."
)

# Per-message statuses of /v3/sms/send that say what to fix, by the parameter at fault.
_MESSAGE_STATUSES = {
    "INVALID_RECIPIENT": ("to", "the recipient's number is not a valid mobile number"),
    "INVALID_SENDER_ID": ("from", "the sender ID is not allowed for this destination"),
    "COUNTRY_NOT_ENABLED": ("to", "sending to this country is not enabled on the account"),
    "INSUFFICIENT_CREDIT": ("", "the ClickSend account is out of credit: top it up"),
}


def phone(value: Any, parameter: str) -> str:
    """An E.164 number from a number written with a country code (+ or 00)."""
    try:
        return e164(as_text(value, parameter))
    except ValueError as exc:
        raise MappingError(parameter, str(exc)) from None


def _sender(value: Any) -> str:
    text = as_text(value, "from").strip()
    if text.startswith(("+", "00")):
        return phone(text, "from")
    if not _SENDER_ID.match(text):
        raise MappingError("from", "must be a number with its country code, or 1-11 letters/digits")
    return text


def _message(event: ActionInput) -> dict[str, Any]:
    params = event.params
    message: dict[str, Any] = {
        "source": "sluice",
        "to": phone(require_text(params, "to"), "to"),
        "body": require_text(params, "body"),
    }
    if not is_blank(params.get("from")):
        message["from"] = _sender(params["from"])
    if not is_blank(params.get("custom_string")):
        custom = as_text(params["custom_string"], "custom_string").strip()
        if len(custom) > MAX_CUSTOM_STRING:
            raise MappingError("custom_string", f"ClickSend keeps at most {MAX_CUSTOM_STRING}")
        message["custom_string"] = custom
    if not is_blank(params.get("schedule")):
        try:
            message["schedule"] = unix_timestamp(params["schedule"])
        except ValueError as exc:
            raise MappingError("schedule", str(exc)) from None
    return message


def _auth(config: Mapping[str, Any]) -> dict[str, str]:
    username, api_key = config.get("username"), config.get("api_key")
    if is_blank(username) or is_blank(api_key):
        raise FatalDelivery("auth", "ClickSend: set the API username and the API key")
    return {"Authorization": basic_auth(str(username).strip(), str(api_key).strip())}


def _base(ctx: BuildContext) -> str:
    return (ctx.base_url or DEFAULT_BASE_URL).rstrip("/")


def build_sms(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    # One bad number must not sink the other messages of the batch: the rejected events
    # ride along, after the sent ones, for classify to report.
    batches = pack(
        inputs,
        lambda event: (orjson.dumps(_message(event)), 0),
        max_count=MAX_MESSAGES,
        rejected_last=True,
    )
    return [
        batch.request(
            f"{_base(ctx)}/v3/sms/send",
            {"Content-Type": "application/json", **_auth(ctx.config)},
            b'{"messages":[' + b",".join(batch.entries) + b"]}",
            sensitive_headers=frozenset({"authorization"}),
        )
        for batch in batches
    ]


def _document(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        doc = None
    return doc if isinstance(doc, dict) else {}


def _field_problems(data: Any) -> str:
    """ClickSend's validation details, ``{"field": ["message", ...]}``, as one line."""
    if not isinstance(data, dict):
        return ""
    parts = []
    for name, value in data.items():
        texts = value if isinstance(value, list) else [value]
        parts.append(f"{name}: {'; '.join(str(t) for t in texts)}")
    return ", ".join(parts)


_HINTS = {
    401: "check the API username and key (Dashboard > Developers > API Credentials)",
    403: "check the API username and key, and that the account may use this feature",
    404: "check the contact list ID (and contact ID)",
}


def _judge(response: HttpResponse) -> tuple[Outcome, dict[str, Any]]:
    """The outcome of the whole request, from its status or the envelope's ``http_code``."""
    doc = _document(response.body)
    status = response.status
    code = doc.get("http_code")
    if 200 <= status < 300 and isinstance(code, int) and code >= 400:
        status = code  # an error answered with a 200: the envelope says what happened
    outcome = classify_status(HttpResponse(status, response.headers, b""))
    if outcome is None:
        return None, doc
    message = f"ClickSend: {doc.get('response_code') or f'HTTP {status}'}"
    for extra in (doc.get("response_msg"), _field_problems(doc.get("data")), _HINTS.get(status)):
        message += f"; {extra}" if extra else ""
    if isinstance(outcome, RetryableDelivery):
        retry_after = outcome.retry_after
        return RetryableDelivery(
            outcome.category, message, status_code=status, retry_after=retry_after
        ), doc
    return FatalDelivery(outcome.category, message, status_code=status), doc


def _message_outcome(entry: Any) -> Outcome:
    status = str(entry.get("status", "")).upper() if isinstance(entry, dict) else ""
    if status in _QUEUED:
        return None
    parameter, meaning = _MESSAGE_STATUSES.get(status, ("", "ClickSend did not queue it"))
    where = f" (parameter {parameter!r})" if parameter else ""
    return FatalDelivery("http_4xx", f"ClickSend: {status or 'no status'}{where}: {meaning}")


def classify_sms(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    verdict, doc = _judge(response)
    data = doc.get("data")
    entries = data.get("messages") if verdict is None and isinstance(data, dict) else None
    per_message: Outcome | list[Outcome] = verdict
    # ClickSend answers the messages in the order they were sent.
    if isinstance(entries, list) and len(entries) == len(sent_positions(request)):
        per_message = [_message_outcome(entry) for entry in entries]
    outcomes = with_rejected(request, per_message)
    return outcomes if isinstance(outcomes, list) else [outcomes] * len(request.items)


# The contact's optional text fields: name, title, help, group.
_CONTACT_TEXT = (
    ("email", "Email", "The contact's email address.", "Contact"),
    ("fax_number", "Fax number", "In international format, e.g. +61261111111.", "Contact"),
    ("first_name", "First name", "The contact's first name.", "Contact"),
    ("last_name", "Last name", "The contact's last name.", "Contact"),
    ("organization_name", "Organisation", "The contact's company.", "Contact"),
    ("address_line_1", "Address line 1", "Street address.", "Address"),
    ("address_line_2", "Address line 2", "More of the address.", "Address"),
    ("address_city", "City", "The contact's city.", "Address"),
    ("address_state", "State", "State or region.", "Address"),
    ("address_postal_code", "Postal code", "Postcode or ZIP.", "Address"),
    ("address_country", "Country", "Two-letter country code, e.g. AU.", "Address"),
    *(
        (f"custom_{n}", f"Custom field {n}", "Free text for message templates.", "Custom fields")
        for n in range(1, 5)
    ),
)


def _contact(params: Mapping[str, Any]) -> dict[str, Any]:
    contact = {"phone_number": phone(require_text(params, "phone_number"), "phone_number")}
    for name, *_ in _CONTACT_TEXT:
        if not is_blank(params.get(name)):
            contact[name] = as_text(params[name], name).strip()
    if "email" in contact:
        contact["email"] = contact["email"].lower()
    return contact


def _numeric_id(params: Mapping[str, Any], name: str) -> str:
    text = require_text(params, name).strip()
    if not text.isdigit():
        raise MappingError(name, "must be ClickSend's numeric ID")
    return text


def build_contact(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    headers = _auth(ctx.config)
    requests: list[HttpRequest] = []
    for index, event in enumerate(inputs):
        url = f"{_base(ctx)}/v3/lists/{_numeric_id(event.params, 'list_id')}/contacts"
        method = "POST"
        if not is_blank(event.params.get("contact_id")):
            url += f"/{_numeric_id(event.params, 'contact_id')}"
            method = "PUT"
        requests.append(
            json_request(
                url,
                _contact(event.params),
                method=method,
                headers=headers,
                items=(index,),
                sensitive_headers=frozenset({"authorization"}),
            )
        )
    return requests


def classify_contact(request: HttpRequest, response: HttpResponse) -> Outcome:
    return _judge(response)[0]


def _text(name: str, title: str, help: str, group: str) -> Field:
    return Field(name, title, group=group, help=help)


SEND_AN_SMS = ActionType(
    id="send_an_sms",
    name="Send an SMS",
    description=(
        "Send a text message to one number; messages are batched, up to 1,000 per request, "
        "and ClickSend's answer is recorded per message."
    ),
    parameters=(
        Field("to", "To", required=True, group="Message", help=TO_HELP),
        Field("body", "Message", "text", required=True, group="Message", help=BODY_HELP),
        _text("from", "From (sender ID)", FROM_HELP, "Options"),
        _text("custom_string", "Reference", CUSTOM_STRING_HELP, "Options"),
        Field("schedule", "Send at (Unix time)", "integer", group="Options", help=SCHEDULE_HELP),
    ),
    build=build_sms,
    classify=classify_sms,
    consent_categories=("mobile", "engagement"),
    # A repeated request after a timeout would send the text twice.
    idempotent=False,
    # SMS are urgent: a batch waits at most 2 s for company.
    batching=Batching(max_count=MAX_MESSAGES, max_bytes=MAX_BYTES, max_age_seconds=2),
)

CREATE_OR_UPDATE_A_CONTACT = ActionType(
    id="create_or_update_a_contact",
    name="Create or Update a Contact",
    description=(
        "Add a contact to a ClickSend contact list, or update the contact whose ClickSend "
        "contact ID the event carries."
    ),
    parameters=(
        Field(
            "list_id",
            "Contact list ID",
            "integer",
            required=True,
            group="Contact list",
            help="The numeric ID of the list, shown in the dashboard under Contacts.",
        ),
        Field(
            "contact_id",
            "Contact ID",
            "integer",
            group="Contact list",
            help="ClickSend's ID of an existing contact to update; empty adds a new contact.",
        ),
        Field("phone_number", "Phone number", required=True, group="Contact", help=TO_HELP),
        *(_text(name, title, help, group) for name, title, help, group in _CONTACT_TEXT),
    ),
    build=build_contact,
    classify=classify_contact,
    consent_categories=("crm", "mobile"),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#1776d1"/>
  <path d="M16 20h32a4 4 0 0 1 4 4v14a4 4 0 0 1-4 4H30l-9 7v-7h-5a4 4 0 0 1-4-4V24a4 4 0 0 1
           4-4z" fill="#ffffff"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="clicksend",
    name="ClickSend",
    description=(
        "Send SMS through ClickSend and keep ClickSend contact lists in step with your "
        "customers: order updates, reminders, alerts."
    ),
    configuration=(
        Field(
            "username",
            "API username",
            required=True,
            group="Credentials",
            help="Your ClickSend API username, from Dashboard > Developers > API Credentials.",
        ),
        Field(
            "api_key",
            "API key",
            required=True,
            secret=True,
            group="Credentials",
            help="The API key shown beside the username; a subaccount's key works too.",
        ),
    ),
    actions=(SEND_AN_SMS, CREATE_OR_UPDATE_A_CONTACT),
    what_you_need=(
        "A ClickSend account with credit for SMS.",
        "The API username and API key (Dashboard > Developers > API Credentials).",
        "For contacts: the numeric ID of the contact list to keep up to date.",
        "A sender ID or number registered for the countries that require one.",
    ),
    resources=(
        Resource("ClickSend REST API v3", "https://developers.clicksend.com/docs/rest/v3"),
        Resource("Send SMS", "https://developers.clicksend.com/docs/messaging/sms"),
        Resource("Contact lists", "https://developers.clicksend.com/docs/contacts/lists"),
        Resource("Contacts", "https://developers.clicksend.com/docs/contacts/contacts/"),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
