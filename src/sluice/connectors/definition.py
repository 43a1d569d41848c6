"""The declarative format of a connector type.

A connector type is data (its fields, action types and catalog summary) plus one small
``build`` function per action type that turns resolved parameters into HTTP requests.
Connector modules know nothing of storage or the web: they receive plain values and
return :class:`HttpRequest` objects; the delivery engine sends them and hands each
:class:`HttpResponse` back to the action's ``classify`` function.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sluice.errors import DeliveryError, FatalDelivery, RetryableDelivery

FieldType = Literal[
    "string",  # one line of text
    "text",  # several lines (message bodies, templates)
    "url",
    "number",
    "integer",
    "boolean",
    "map",  # key -> value entries; each mapping names its entry with ``key``
    "list",  # a JSON array
    "object",  # a JSON object
]
DataType = Literal["event", "visitor"]

CONSENT_CATEGORIES = (
    "analytics",
    "affiliates",
    "display ads",
    "search",
    "email",
    "personalization",
    "social",
    "big data",
    "misc",
    "cookiematch",
    "cdp",
    "mobile",
    "engagement",
    "monitoring",
    "crm",
)


@dataclass(frozen=True)
class Field:
    """A configuration field of a connector, or a parameter of an action type."""

    name: str
    title: str
    type: FieldType = "string"
    required: bool = False
    secret: bool = False
    group: str | None = None
    help: str = ""
    default: Any = None
    enum: tuple[str, ...] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "type": self.type,
            "required": self.required,
            "secret": self.secret,
            "group": self.group,
            "help": self.help,
            "default": self.default,
            "enum": list(self.enum) if self.enum is not None else None,
        }


@dataclass(frozen=True)
class Batching:
    """Limits of one batch; a batch is sent when it reaches any of them."""

    max_count: int
    max_bytes: int
    max_age_seconds: float

    def as_json(self) -> dict[str, Any]:
        return {
            "max_count": self.max_count,
            "max_bytes": self.max_bytes,
            "max_age_seconds": self.max_age_seconds,
        }


@dataclass(frozen=True)
class Resource:
    title: str
    url: str
    internal: bool = False


@dataclass(frozen=True)
class ActionInput:
    """One event's resolved parameters, as handed to an action type's ``build``.

    ``params`` holds the mapped values by parameter name (a ``map`` parameter is a dict);
    ``data`` is what the mappings saw (the event, or the visitor context for audience
    sources); ``idempotency_key`` is stable across retries (event id + action id).
    """

    params: Mapping[str, Any]
    data: Mapping[str, Any]
    event_id: str
    idempotency_key: str


@dataclass
class HttpRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    # Indexes (into the inputs given to ``build``) of the events this request carries.
    items: tuple[int, ...] = (0,)
    # Header names whose values must never be shown (compared case-insensitively).
    sensitive_headers: frozenset[str] = frozenset()


@dataclass
class HttpResponse:
    status: int
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    elapsed_ms: float = 0.0


@dataclass(frozen=True)
class BuildContext:
    """What ``build`` may use besides the inputs: the decrypted configuration."""

    config: Mapping[str, Any]
    base_url: str | None
    action_id: str = ""
    connector_id: str = ""


# ``build`` turns inputs (one, or a batch) into the requests to send.
BuildFn = Callable[[BuildContext, Sequence[ActionInput]], list[HttpRequest]]
# ``classify`` judges one response: None for every item delivered, a DeliveryError for
# all of them, or a list with one entry per item of ``request.items`` for vendors that
# answer per event in a batch.
Outcome = DeliveryError | None
ClassifyFn = Callable[[HttpRequest, HttpResponse], "Outcome | list[Outcome]"]


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _snippet(body: bytes, limit: int = 300) -> str:
    text = body[:limit].decode("utf-8", "replace").strip()
    return text + ("…" if len(body) > limit else "")


def classify_status(response: HttpResponse) -> Outcome:
    """SPEC §5's default: 2xx delivered, 401/403 auth, 429 and 408/423/5xx retried."""
    status = response.status
    if 200 <= status < 300:
        return None
    message = f"HTTP {status}"
    snippet = _snippet(response.body)
    if snippet:
        message = f"{message}: {snippet}"
    if status in (401, 403):
        return FatalDelivery("auth", message, status_code=status)
    if status == 429:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RetryableDelivery("rate_limit", message, status_code=status, retry_after=retry_after)
    if status in (408, 423):
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RetryableDelivery("http_4xx", message, status_code=status, retry_after=retry_after)
    if status >= 500 and status != 501:
        retry_after = parse_retry_after(response.headers.get("retry-after"))
        return RetryableDelivery("http_5xx", message, status_code=status, retry_after=retry_after)
    if status >= 500:
        return FatalDelivery("http_5xx", message, status_code=status)
    return FatalDelivery("http_4xx", message, status_code=status)


def default_classify(request: HttpRequest, response: HttpResponse) -> Outcome | list[Outcome]:
    return classify_status(response)


@dataclass(frozen=True)
class ActionType:
    id: str
    name: str
    description: str
    parameters: tuple[Field, ...]
    build: BuildFn
    consent_categories: tuple[str, ...] = ()
    data_types: tuple[DataType, ...] = ("event", "visitor")
    batching: Batching | None = None
    # Safe to retry after a timeout (the vendor may have acted on the first attempt)?
    idempotent: bool = True
    # Webhook-style actions let the user choose consent categories per action.
    user_consent: bool = False
    classify: ClassifyFn = default_classify

    def parameter(self, name: str) -> Field | None:
        for param in self.parameters:
            if param.name == name:
                return param
        return None


@dataclass(frozen=True)
class ConnectorType:
    id: str
    name: str
    description: str
    configuration: tuple[Field, ...]
    actions: tuple[ActionType, ...]
    what_you_need: tuple[str, ...] = ()
    resources: tuple[Resource, ...] = ()
    # An SVG document, served by the catalog as a data URI.
    icon_svg: str = ""
    # The vendor's API root. When set, every connector of this type gets an optional
    # ``base_url`` configuration field that overrides it (regional endpoints, tests).
    base_url: str | None = None

    @property
    def data_types(self) -> tuple[DataType, ...]:
        seen: list[DataType] = []
        for action in self.actions:
            for data_type in action.data_types:
                if data_type not in seen:
                    seen.append(data_type)
        return tuple(seen)

    def action(self, action_type_id: str) -> ActionType | None:
        for action in self.actions:
            if action.id == action_type_id:
                return action
        return None

    def all_configuration(self) -> tuple[Field, ...]:
        """The type's own fields, then ``base_url`` and the delivery settings of every connector."""
        extra: list[Field] = []
        if self.base_url is not None and not any(f.name == "base_url" for f in self.configuration):
            extra.append(
                Field(
                    "base_url",
                    "API base URL",
                    "url",
                    default=self.base_url,
                    group="Advanced",
                    help=(
                        "Override the vendor's API root, for a regional endpoint or a test server."
                    ),
                )
            )
        own = {f.name for f in self.configuration}
        extra.extend(f for f in DELIVERY_FIELDS if f.name not in own)
        return self.configuration + tuple(extra)

    def secret_fields(self) -> frozenset[str]:
        return frozenset(f.name for f in self.all_configuration() if f.secret)


DELIVERY_FIELDS: tuple[Field, ...] = (
    Field(
        "timeout_seconds",
        "Request timeout (seconds)",
        "number",
        default=10,
        group="Delivery",
        help="How long to wait for the vendor to answer one request.",
    ),
    Field(
        "max_concurrency",
        "Concurrent requests",
        "integer",
        default=16,
        group="Delivery",
        help="Requests in flight to this connector at once.",
    ),
    Field(
        "rate_limit_per_second",
        "Rate limit (requests/s)",
        "number",
        default=None,
        group="Delivery",
        help="At most this many requests per second; empty means no limit. Slows down on 429.",
    ),
    Field(
        "max_attempts",
        "Maximum attempts",
        "integer",
        default=8,
        group="Delivery",
        help="Attempts per delivery, first one included, before it goes to the error log.",
    ),
    Field(
        "first_retry_seconds",
        "First retry after (seconds)",
        "number",
        default=10,
        group="Delivery",
        help="The first retry waits about this long, each next one three times longer (±20 %).",
    ),
    Field(
        "max_retry_hours",
        "Retry for at most (hours)",
        "number",
        default=24,
        group="Delivery",
        help="A delivery still failing this long after the event arrived goes to the error log.",
    ),
)
