"""Twilio: send SMS through the Programmable Messaging REST API.

Vendor docs used: the Message resource (``POST /2010-04-01/Accounts/{AccountSid}/Messages.json``,
form-encoded ``To``, ``From`` or ``MessagingServiceSid``, ``Body`` of at most 1,600 characters,
``StatusCallback``), https://www.twilio.com/docs/messaging/api/message-resource; API
responses and the error body ``{"code", "message", "more_info", "status"}``,
https://www.twilio.com/docs/usage/twilios-response; authentication with the Account SID and
Auth Token or an API key SID and secret, https://www.twilio.com/docs/iam/api-keys; the error
dictionary (20003, 20404, 20429, 21211, 21408, 21610, 21614, ...),
https://www.twilio.com/docs/api/errors.

Twilio takes no idempotency key for messages, so a request that timed out is never repeated.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote, urlencode

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
from sluice.connectors.helpers import (
    as_text,
    basic_auth,
    is_blank,
    require,
    require_text,
    require_url,
)
from sluice.engine.transforms import e164
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DEFAULT_BASE_URL = "https://api.twilio.com"
MAX_BODY = 1600  # characters; Twilio refuses longer bodies (error 21617)
_MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
_ALPHANUMERIC = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
_SHORT_CODE = re.compile(r"^[0-9]{3,8}$")

# Twilio error codes that blame one request parameter (by Sluice's parameter name).
_PARAMETER_OF_CODE = {
    21211: "to",  # invalid 'To' phone number
    21408: "to",  # sending to this region is not enabled
    21604: "to",  # 'To' is required
    21610: "to",  # the recipient replied STOP
    21612: "to",  # 'To' cannot be reached by SMS
    21614: "to",  # 'To' is not a mobile number
    21212: "from",  # invalid 'From' phone number
    21603: "from",  # 'From' is required
    21606: "from",  # 'From' is not a message-capable Twilio number
    21659: "from",  # 'From' is not a Twilio number
    21701: "from",  # the Messaging Service does not exist
    21703: "from",  # the Messaging Service has no sender for this destination
    21705: "from",  # the Messaging Service is invalid
    21602: "body",  # 'Body' is required
    21617: "body",  # 'Body' exceeds 1,600 characters
    21609: "status_callback",  # invalid StatusCallback URL
}


def phone(value: Any, parameter: str) -> str:
    """An E.164 number from a number written with a country code (+ or 00)."""
    try:
        return e164(as_text(value, parameter))
    except ValueError as exc:
        raise MappingError(parameter, str(exc)) from None


def sender(value: Any) -> tuple[str, str]:
    """The form field and value for ``from``: a Messaging Service SID, a number or an ID."""
    text = as_text(value, "from").strip()
    if _MESSAGING_SERVICE.match(text):
        return "MessagingServiceSid", text
    if text.startswith(("+", "00")):
        return "From", phone(text, "from")
    if _SHORT_CODE.match(text) or _ALPHANUMERIC.match(text):
        return "From", text
    raise MappingError(
        "from",
        "must be a number with its country code, a short code, an alphanumeric sender ID "
        "(1 to 11 letters, digits or spaces) or a Messaging Service SID (MG...)",
    )


def _auth(config: Mapping[str, Any]) -> tuple[str, str]:
    """The Account SID for the URL, and the Authorization header's value."""
    account, secret = config.get("account_sid"), config.get("auth_token")
    if is_blank(account) or is_blank(secret):
        raise FatalDelivery("auth", "Twilio: set the Account SID and the Auth Token (or secret)")
    account = str(account).strip()
    # With an API key, the key's SID is the user name and its secret the password.
    username = str(config.get("api_key_sid") or "").strip() or account
    return account, basic_auth(username, str(secret).strip())


def build_send_sms(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    account, authorization = _auth(ctx.config)
    base = (ctx.base_url or DEFAULT_BASE_URL).rstrip("/")
    url = f"{base}/2010-04-01/Accounts/{quote(account, safe='')}/Messages.json"
    requests: list[HttpRequest] = []
    for index, event in enumerate(inputs):
        params = event.params
        body = require_text(params, "body")
        if len(body) > MAX_BODY:
            raise MappingError("body", f"has {len(body)} characters; Twilio takes {MAX_BODY}")
        form = [("To", phone(require_text(params, "to"), "to")), sender(require(params, "from"))]
        form.append(("Body", body))
        if not is_blank(params.get("status_callback")):
            form.append(("StatusCallback", require_url(params, "status_callback")))
        requests.append(
            HttpRequest(
                "POST",
                url,
                {
                    "Content-Type": "application/x-www-form-urlencoded",
                    "Accept": "application/json",
                    "Authorization": authorization,
                },
                urlencode(form).encode(),
                (index,),
                frozenset({"authorization"}),
            )
        )
    return requests


def _error(body: bytes) -> dict[str, Any]:
    try:
        doc = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        return {}
    return doc if isinstance(doc, dict) else {}


def classify_send_sms(request: HttpRequest, response: HttpResponse) -> Outcome:
    """Twilio's answer: 201 with the Message, or its error JSON with a numeric ``code``."""
    outcome = classify_status(response)
    if outcome is None:
        return None
    doc = _error(response.body)
    code = doc.get("code")
    message = f"Twilio {code}: " if isinstance(code, int) else f"Twilio: HTTP {response.status}: "
    message += str(doc.get("message") or "no error message")
    parameter = _PARAMETER_OF_CODE.get(code) if isinstance(code, int) else None
    if parameter:
        message += f" (parameter {parameter!r})"
    if response.status == 404 and code == 20404:
        message += "; check the Account SID"
    if doc.get("more_info"):
        message += f"; see {doc['more_info']}"
    if isinstance(outcome, RetryableDelivery):
        return RetryableDelivery(
            outcome.category,
            message,
            status_code=response.status,
            retry_after=outcome.retry_after,
        )
    return FatalDelivery(outcome.category, message, status_code=response.status)


SEND_SMS = ActionType(
    id="send_sms",
    name="Send SMS",
    description="Send a text message from a Twilio number, sender ID or Messaging Service.",
    parameters=(
        Field(
            "to",
            "To",
            required=True,
            group="Message",
            help="The recipient's mobile number with its country code, e.g. +14155552671.",
        ),
        Field(
            "from",
            "From",
            required=True,
            group="Message",
            help=(
                "A Messaging Service SID (MG...), or a Twilio number, short code or "
                "alphanumeric sender ID of your account."
            ),
        ),
        Field(
            "body",
            "Message",
            "text",
            required=True,
            group="Message",
            help=f"The text to send, usually a template; at most {MAX_BODY} characters.",
        ),
        Field(
            "status_callback",
            "Status callback URL",
            "url",
            group="Options",
            help="Twilio posts the message's delivery status (sent, delivered, failed) here.",
        ),
    ),
    build=build_send_sms,
    classify=classify_send_sms,
    consent_categories=("mobile", "engagement"),
    # Twilio has no idempotency key for messages: a retry after a timeout could text twice.
    idempotent=False,
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#f22f46"/>
  <circle cx="32" cy="32" r="17" fill="none" stroke="#ffffff" stroke-width="4"/>
  <circle cx="26" cy="26" r="4" fill="#ffffff"/>
  <circle cx="38" cy="26" r="4" fill="#ffffff"/>
  <circle cx="26" cy="38" r="4" fill="#ffffff"/>
  <circle cx="38" cy="38" r="4" fill="#ffffff"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="twilio",
    name="Twilio",
    description="Send SMS with Twilio Programmable Messaging when customers do something.",
    configuration=(
        Field(
            "account_sid",
            "Account SID",
            required=True,
            group="Credentials",
            help="Starts with AC; shown on the Twilio Console's account dashboard.",
        ),
        Field(
            "auth_token",
            "Auth Token or API key secret",
            required=True,
            secret=True,
            group="Credentials",
            help="The account's Auth Token, or the secret of the API key named below.",
        ),
        Field(
            "api_key_sid",
            "API key SID",
            group="Credentials",
            help="Starts with SK; set it to sign in with an API key instead of the Auth Token.",
        ),
        Field(
            "base_url",
            "API endpoint",
            "url",
            default=DEFAULT_BASE_URL,
            group="Advanced",
            help=(
                "https://api.twilio.com (United States); for a Twilio Region use its edge, e.g. "
                "https://api.dublin.ie1.twilio.com, with that region's credentials."
            ),
        ),
    ),
    actions=(SEND_SMS,),
    what_you_need=(
        "A Twilio account and its Account SID.",
        "The Auth Token, or (better) an API key SID and secret made under Account > API keys.",
        "A sender: an SMS-capable Twilio number, a short code, an approved alphanumeric sender "
        "ID, or a Messaging Service.",
        "For US numbers, an approved A2P 10DLC campaign or toll-free verification.",
    ),
    resources=(
        Resource("Messages resource", "https://www.twilio.com/docs/messaging/api/message-resource"),
        Resource("API keys", "https://www.twilio.com/docs/iam/api-keys"),
        Resource("Error and warning dictionary", "https://www.twilio.com/docs/api/errors"),
        Resource("Twilio API responses", "https://www.twilio.com/docs/usage/twilios-response"),
    ),
    icon_svg=ICON_SVG,
    base_url=DEFAULT_BASE_URL,
)
