"""Mailchimp: add, update and unsubscribe audience members through the Marketing API.

Vendor docs used: add or update a list member (PUT) and update a list member (PATCH),
https://mailchimp.com/developer/marketing/api/list-members/; API keys, data centers and Basic
authentication, https://mailchimp.com/developer/marketing/docs/fundamentals/; the
problem-details error format, https://mailchimp.com/developer/marketing/docs/errors/; merge
fields, https://mailchimp.com/developer/marketing/docs/merge-fields/.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping, Sequence
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
from sluice.connectors.helpers import (
    as_text,
    basic_auth,
    is_blank,
    json_request,
    map_param,
    require_text,
    with_query,
)
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

DOCS = "https://mailchimp.com/developer/marketing"
# Keys end in their data center ("...-us6"); the oldest keys carry none and live in us1.
_DATA_CENTER = re.compile(r"^[a-z]{2,}[0-9]{1,3}$")
_LIST_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")  # a path segment: no "/" or "."
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
STATUSES = ("subscribed", "unsubscribed", "cleaned", "pending", "transactional")
AUDIENCE, MEMBER, OPTIONS = "Audience", "Member", "Options"


def base_url(config: Mapping[str, Any]) -> str:
    """The configured API root, else ``https://<dc>.api.mailchimp.com`` from the key's suffix."""
    configured = config.get("base_url")
    if not is_blank(configured):
        return str(configured).strip().rstrip("/")
    key = str(config.get("api_key") or "").strip()
    suffix = key.rsplit("-", 1)[1].lower() if "-" in key else ""
    return f"https://{suffix if _DATA_CENTER.match(suffix) else 'us1'}.api.mailchimp.com"


def subscriber_hash(email: str) -> str:
    """Mailchimp's member id: the MD5 of the lowercased email address."""
    return hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()


def _email(params: Mapping[str, Any]) -> str:
    email = require_text(params, "email_address").strip()
    if not _EMAIL.match(email):
        raise MappingError("email_address", "is not an email address")
    return email


def _member_url(ctx: BuildContext, params: Mapping[str, Any], email: str) -> str:
    list_id = require_text(params, "list_id").strip()
    if not _LIST_ID.match(list_id):
        raise MappingError("list_id", "must be the audience ID (letters and digits)")
    return f"{base_url(ctx.config)}/3.0/lists/{list_id}/members/{subscriber_hash(email)}"


def _auth(ctx: BuildContext) -> dict[str, str]:
    key = ctx.config.get("api_key")
    if is_blank(key):
        raise FatalDelivery("auth", "Mailchimp: no API key is configured")
    # Mailchimp takes any user name with the API key as the password.
    return {"Authorization": basic_auth("sluice", str(key).strip())}


def _tags(value: Any) -> list[str]:
    if is_blank(value):
        return []
    if isinstance(value, str):
        value = value.split(",")  # a plain "vip, newsletter" is handy in a mapping
    if not isinstance(value, list | tuple):
        raise MappingError("tags", "must be a list of tag names")
    tags = [as_text(tag, "tags").strip() for tag in value]
    if any(len(tag) > 100 for tag in tags):
        raise MappingError("tags", "a tag name is longer than 100 characters")
    return [tag for tag in tags if tag]


def _member_body(params: Mapping[str, Any], email: str) -> dict[str, Any]:
    status_if_new = params.get("status_if_new") or "subscribed"
    if status_if_new not in ("subscribed", "pending"):
        raise MappingError("status_if_new", "must be subscribed or pending")
    body: dict[str, Any] = {"email_address": email, "status_if_new": status_if_new}
    status = params.get("status")
    if not is_blank(status):
        if status not in STATUSES:
            raise MappingError("status", f"must be one of {', '.join(STATUSES)}")
        body["status"] = status
    # Merge tags are upper case in Mailchimp (FNAME, LNAME, ADDRESS...).
    merge_fields = {key.upper(): value for key, value in map_param(params, "merge_fields").items()}
    if merge_fields:
        body["merge_fields"] = merge_fields
    interests = map_param(params, "interests")
    if interests:
        body["interests"] = {key: bool(value) for key, value in interests.items()}
    tags = _tags(params.get("tags"))
    if tags:
        body["tags"] = tags
    for name in ("language", "email_type"):
        if not is_blank(params.get(name)):
            body[name] = as_text(params[name], name).strip()
    if params.get("vip") is not None:
        body["vip"] = bool(params["vip"])
    return body


def build_subscribe(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    requests = []
    for index, event in enumerate(inputs):
        email = _email(event.params)
        url = _member_url(ctx, event.params, email)
        if event.params.get("skip_merge_validation"):
            url = with_query(url, {"skip_merge_validation": "true"})
        body = _member_body(event.params, email)
        requests.append(json_request(url, body, method="PUT", headers=_auth(ctx), items=(index,)))
    return requests


def build_unsubscribe(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    requests = []
    for index, event in enumerate(inputs):
        email = _email(event.params)
        url = _member_url(ctx, event.params, email)
        if event.params.get("add_if_missing"):
            # PUT records the opt-out even for an address the audience never had.
            body: dict[str, Any] = {
                "email_address": email,
                "status_if_new": "unsubscribed",
                "status": "unsubscribed",
            }
            method = "PUT"
        else:
            body, method = {"status": "unsubscribed"}, "PATCH"
        requests.append(json_request(url, body, method=method, headers=_auth(ctx), items=(index,)))
    return requests


def _problem(response: HttpResponse) -> str:
    """Mailchimp's problem details as one line, naming each field it rejects."""
    try:
        doc = orjson.loads(response.body) if response.body else None
    except orjson.JSONDecodeError:
        doc = None
    if not isinstance(doc, dict):
        text = response.body[:200].decode("utf-8", "replace").strip()
        return f"Mailchimp: HTTP {response.status}" + (f": {text}" if text else "")
    title = str(doc.get("title") or f"HTTP {response.status}")
    message = f"Mailchimp: {title}"
    if doc.get("detail"):
        message += f": {doc['detail']}"
    fields = [
        f"{error.get('field') or '(request)'}: {error.get('message') or 'invalid'}"
        for error in doc.get("errors") or []
        if isinstance(error, dict)
    ]
    return message + (f" ({'; '.join(fields)})" if fields else "")


def classify(request: HttpRequest, response: HttpResponse) -> Outcome:
    status = response.status
    if 200 <= status < 300:
        return None
    message = _problem(response)
    if status in (401, 403):
        return FatalDelivery("auth", f"{message}; check the API key", status_code=status)
    if status == 404:
        hint = "check the audience ID; PATCH cannot unsubscribe an address the audience never had"
        return FatalDelivery("http_4xx", f"{message}; {hint}", status_code=status)
    outcome = classify_status(response)
    if isinstance(outcome, RetryableDelivery):
        # 429 here means more than 10 simultaneous connections, or a burst: wait and retry.
        return RetryableDelivery(
            outcome.category, message, status_code=status, retry_after=outcome.retry_after
        )
    return FatalDelivery(outcome.category if outcome else "http_4xx", message, status_code=status)


def _audience_fields() -> tuple[Field, ...]:
    return (
        Field(
            "list_id",
            "Audience ID",
            required=True,
            group=AUDIENCE,
            help="From Audience > Settings > Audience name and defaults, e.g. a1b2c3d4e5.",
        ),
        Field(
            "email_address",
            "Email address",
            required=True,
            group=MEMBER,
            help="The member's email address; its lowercase MD5 identifies the member.",
        ),
    )


SUBSCRIBE_OR_UPDATE_MEMBER = ActionType(
    id="subscribe_or_update_member",
    name="Subscribe or Update Member",
    description=(
        "Add a contact to a Mailchimp audience, or update the member if the address is "
        "already there: status, merge fields, tags, interests."
    ),
    parameters=(
        *_audience_fields(),
        Field(
            "status_if_new",
            "Status if new",
            required=True,
            group=MEMBER,
            default="subscribed",
            enum=("subscribed", "pending"),
            help="For a new address: subscribed, or pending to send a double opt-in email.",
        ),
        Field(
            "status",
            "Status",
            group=MEMBER,
            enum=STATUSES,
            help="Also change an existing member's status; leave empty to keep it.",
        ),
        Field("merge_fields", "Merge fields", "map", group=MEMBER, help="E.g. FNAME, LNAME."),
        Field("tags", "Tags", "list", group=OPTIONS, default=[], help="Tag names to add."),
        Field("interests", "Groups", "map", group=OPTIONS, help="Interest IDs to true or false."),
        Field("language", "Language", group=OPTIONS, help="The member's language code, e.g. fr."),
        Field(
            "email_type", "Email type", group=OPTIONS, enum=("html", "text"), help="html or text."
        ),
        Field("vip", "VIP", "boolean", group=OPTIONS, help="Mark the member as a VIP."),
        Field(
            "skip_merge_validation",
            "Skip merge field validation",
            "boolean",
            group=OPTIONS,
            help="Accept the member even when a required merge field is missing.",
        ),
    ),
    build=build_subscribe,
    classify=classify,
    consent_categories=("email",),
)

UNSUBSCRIBE = ActionType(
    id="unsubscribe",
    name="Unsubscribe",
    description="Unsubscribe a member from a Mailchimp audience.",
    parameters=(
        *_audience_fields(),
        Field(
            "add_if_missing",
            "Record unknown addresses",
            "boolean",
            group=OPTIONS,
            default=False,
            help="Add an address the audience does not have as unsubscribed, instead of a 404.",
        ),
    ),
    build=build_unsubscribe,
    classify=classify,
    consent_categories=("email",),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#ffe01b"/>
  <text x="32" y="44" text-anchor="middle" font-family="Helvetica, Arial, sans-serif"
        font-size="34" font-weight="700" fill="#241c15">M</text>
</svg>
"""

CONNECTOR = ConnectorType(
    id="mailchimp",
    name="Mailchimp",
    description=(
        "Keep Mailchimp audiences in step with your events: subscribe or update members "
        "with merge fields and tags, and unsubscribe them."
    ),
    configuration=(
        Field(
            "api_key",
            "API key",
            required=True,
            secret=True,
            group="Credentials",
            help="From Profile > Extras > API keys; it ends in your data center, e.g. -us6.",
        ),
        Field(
            "base_url",
            "API base URL",
            "url",
            group="Advanced",
            help=(
                "Leave empty: Sluice uses https://<dc>.api.mailchimp.com with the data center "
                "from the end of the API key (us6 for ...-us6). Set it for a proxy or test server."
            ),
        ),
    ),
    actions=(SUBSCRIBE_OR_UPDATE_MEMBER, UNSUBSCRIBE),
    what_you_need=(
        "A Mailchimp account with an audience, and that audience's ID.",
        "A Marketing API key (it ends in your data center, e.g. -us6).",
        "Subscribers' consent to receive email, as your audience's permission settings require.",
    ),
    resources=(
        Resource("List members API", f"{DOCS}/api/list-members/"),
        Resource("API fundamentals: keys and data centers", f"{DOCS}/docs/fundamentals/"),
        Resource("Merge fields", f"{DOCS}/docs/merge-fields/"),
        Resource("Errors", f"{DOCS}/docs/errors/"),
    ),
    icon_svg=ICON_SVG,
)
