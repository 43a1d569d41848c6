"""Webhook: send event data to any HTTP endpoint (SPEC §8, ids fixed)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sluice.connectors.definition import (
    ActionInput,
    ActionType,
    Batching,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
    Resource,
)
from sluice.connectors.helpers import (
    JSON_CONTENT_TYPE,
    as_text,
    basic_auth,
    check_header,
    dump_json,
    is_blank,
    json_request,
    map_param,
    merge_headers,
    require_url,
    with_query,
)
from sluice.errors import FatalDelivery, MappingError

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
AUTH_TYPES = ("none", "basic", "bearer")
BATCH_LIMITS = Batching(max_count=1000, max_bytes=5_000_000, max_age_seconds=300)

_URL = Field(
    "url",
    "URL",
    "url",
    required=True,
    group="Request",
    help="The absolute http(s) URL to send to; it may be a template using event attributes.",
)


def _auth_headers(config: Mapping[str, Any]) -> dict[str, str]:
    auth_type = config.get("auth_type") or "none"
    if auth_type == "none":
        return {}
    if auth_type == "basic":
        username = config.get("username")
        if is_blank(username):
            raise FatalDelivery("auth", "basic authentication is chosen but no username is set")
        value = basic_auth(str(username), str(config.get("password") or ""))
    elif auth_type == "bearer":
        token = config.get("token")
        if is_blank(token):
            raise FatalDelivery("auth", "bearer authentication is chosen but no token is set")
        value = f"Bearer {str(token).strip()}"
        if any(c in value for c in "\r\n\0"):
            raise FatalDelivery("auth", "the bearer token contains a line break")
    else:
        raise FatalDelivery("auth", f"unknown auth_type {auth_type!r}: use none, basic or bearer")
    return {"Authorization": value}


def _sensitive(headers: Mapping[str, str]) -> frozenset[str]:
    return frozenset(name.lower() for name in headers if name.lower() == "authorization")


def _custom_headers(params: Mapping[str, Any]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in map_param(params, "headers").items():
        if value is None:
            continue
        text = as_text(value, "headers")
        check_header(name, text, "headers")
        headers[name] = text
    return headers


def _custom_body(params: Mapping[str, Any]) -> bytes | None:
    body = params.get("body")
    if body is None or body == "":
        return None
    if isinstance(body, str):
        return body.encode()
    if isinstance(body, dict | list | bool | int | float):
        return dump_json(body, "body")
    raise MappingError("body", f"must be text, got {type(body).__name__}")


def build_custom_request(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    auth = _auth_headers(ctx.config)
    requests: list[HttpRequest] = []
    for index, event in enumerate(inputs):
        params = event.params
        method = str(params.get("method") or "").strip().upper()
        if method not in METHODS:
            raise MappingError("method", f"must be one of {', '.join(METHODS)}, got {method!r}")
        url = with_query(require_url(params, "url"), map_param(params, "url_params"))
        body = _custom_body(params)
        headers = {"Idempotency-Key": event.idempotency_key}
        if body is not None:
            content_type = params.get("body_content_type") or JSON_CONTENT_TYPE
            headers["Content-Type"] = as_text(content_type, "body_content_type")
            check_header("Content-Type", headers["Content-Type"], "body_content_type")
        # The user's own headers win over ours; the configured credentials win over both.
        headers = merge_headers(merge_headers(headers, _custom_headers(params)), auth)
        requests.append(
            HttpRequest(
                method=method,
                url=url,
                headers=headers,
                body=body,
                items=(index,),
                sensitive_headers=_sensitive(auth),
            )
        )
    return requests


def build_event_data(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    auth = _auth_headers(ctx.config)
    sensitive = _sensitive(auth)
    return [
        json_request(
            require_url(event.params, "url"),
            dict(event.data),
            headers={"Idempotency-Key": event.idempotency_key, **auth},
            items=(index,),
            sensitive_headers=sensitive,
        )
        for index, event in enumerate(inputs)
    ]


def _batch_size(params: Mapping[str, Any]) -> int:
    value = params.get("max_batch_size")
    if value is None:
        return 100
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise MappingError("max_batch_size", "must be a whole number")
    try:
        size = int(value)
    except ValueError as exc:
        raise MappingError("max_batch_size", f"must be a whole number, got {value!r}") from exc
    if not 1 <= size <= BATCH_LIMITS.max_count:
        raise MappingError("max_batch_size", f"must be between 1 and {BATCH_LIMITS.max_count}")
    return size


def build_batched_data(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    """One request per URL (a templated URL may differ between events) and per batch size."""
    auth = _auth_headers(ctx.config)
    by_url: dict[str, list[int]] = {}
    for index, event in enumerate(inputs):
        by_url.setdefault(require_url(event.params, "url"), []).append(index)
    requests: list[HttpRequest] = []
    for url, indexes in by_url.items():
        size = _batch_size(inputs[indexes[0]].params)
        for start in range(0, len(indexes), size):
            chunk = tuple(indexes[start : start + size])
            requests.append(
                json_request(
                    url,
                    {"events": [dict(inputs[i].data) for i in chunk]},
                    headers=auth,
                    items=chunk,
                    sensitive_headers=_sensitive(auth),
                )
            )
    return requests


SEND_CUSTOM_REQUEST = ActionType(
    id="send_custom_request",
    name="Send Customized Data",
    description=(
        "Send one HTTP request per event, with the method, URL parameters, headers and "
        "body you design; the body is usually a template."
    ),
    parameters=(
        Field(
            "method",
            "HTTP method",
            required=True,
            group="Request",
            enum=METHODS,
            help="The HTTP method of the request.",
        ),
        _URL,
        Field(
            "url_params",
            "URL parameters",
            "map",
            group="Request options",
            help=(
                "Query string parameters added to the URL, URL-encoded; one that is already "
                "in the URL is replaced."
            ),
        ),
        Field(
            "headers",
            "Headers",
            "map",
            group="Request options",
            help="HTTP headers to send, e.g. X-Source: sluice. The configured credentials win.",
        ),
        Field(
            "body_content_type",
            "Body content type",
            group="Body",
            default=JSON_CONTENT_TYPE,
            help="The Content-Type header sent with the body.",
        ),
        Field(
            "body",
            "Body",
            "text",
            group="Body",
            help="The request body, usually a template; leave empty to send no body.",
        ),
    ),
    build=build_custom_request,
    user_consent=True,
)

SEND_EVENT_DATA = ActionType(
    id="send_event_data",
    name="Send Event Data",
    description="POST each whole event (every attribute as received) as a JSON object.",
    parameters=(_URL,),
    build=build_event_data,
    user_consent=True,
)

SEND_BATCHED_DATA = ActionType(
    id="send_batched_data",
    name="Send Batched Data",
    description='POST events in batches as one JSON object: {"events": [event, ...]}.',
    parameters=(
        _URL,
        Field(
            "max_batch_size",
            "Maximum batch size",
            "integer",
            group="Batching",
            default=100,
            help=f"Send a batch once it holds this many events (at most {BATCH_LIMITS.max_count}).",
        ),
        Field(
            "max_batch_age_seconds",
            "Maximum batch age (seconds)",
            "number",
            group="Batching",
            default=10,
            help=(
                "Send a batch at the latest this long after its first event arrived "
                f"(at most {BATCH_LIMITS.max_age_seconds:g})."
            ),
        ),
    ),
    build=build_batched_data,
    batching=BATCH_LIMITS,
    user_consent=True,
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#2b3a55"/>
  <g stroke="#ffffff" stroke-width="4" stroke-linecap="round" fill="none">
    <path d="M32 20 L20 42"/><path d="M32 20 L44 42"/><path d="M20 42 L44 42"/>
  </g>
  <circle cx="32" cy="20" r="7" fill="#f5a623"/>
  <circle cx="20" cy="42" r="7" fill="#4fc3f7"/>
  <circle cx="44" cy="42" r="7" fill="#81c784"/>
</svg>
"""

CONNECTOR = ConnectorType(
    id="webhook",
    name="Webhook",
    description=(
        "Send event and visitor data to any HTTP endpoint: one customised request per event, "
        "the whole event as JSON, or events in batches."
    ),
    configuration=(
        Field(
            "auth_type",
            "Authentication",
            group="Authentication",
            enum=AUTH_TYPES,
            default="none",
            help=(
                "How requests authenticate: none, HTTP Basic (username and password) "
                "or a bearer token."
            ),
        ),
        Field(
            "username",
            "Username",
            group="Authentication",
            help="The user name for Basic authentication.",
        ),
        Field(
            "password",
            "Password",
            secret=True,
            group="Authentication",
            help="The password for Basic authentication.",
        ),
        Field(
            "token",
            "Bearer token",
            secret=True,
            group="Authentication",
            help="The token sent as Authorization: Bearer <token>.",
        ),
        Field(
            "timeout_seconds",
            "Request timeout (seconds)",
            "number",
            default=10,
            group="Delivery",
            help="How long to wait for the endpoint to answer one request.",
        ),
    ),
    actions=(SEND_CUSTOM_REQUEST, SEND_EVENT_DATA, SEND_BATCHED_DATA),
    what_you_need=(
        "The URL of an HTTP endpoint that accepts requests from this Sluice server.",
        "Its credentials, if it needs any: a username and password, or a bearer token.",
    ),
    resources=(
        Resource(
            "HTTP request methods", "https://developer.mozilla.org/en-US/docs/Web/HTTP/Methods"
        ),
        Resource(
            "HTTP authentication (Basic and Bearer)",
            "https://developer.mozilla.org/en-US/docs/Web/HTTP/Authentication",
        ),
        Resource(
            "The Idempotency-Key HTTP header",
            "https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/",
        ),
    ),
    icon_svg=ICON_SVG,
)
