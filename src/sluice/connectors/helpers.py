"""Helpers for ``build`` functions: required values, URLs, JSON bodies, auth and headers.

Every helper raises :class:`~sluice.errors.MappingError` naming the parameter, so a bad value
for one event becomes an error record of category ``mapping`` instead of a crash.
"""

from __future__ import annotations

import base64
import functools
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit, urlunsplit

import orjson

from sluice.connectors.definition import HttpRequest
from sluice.errors import MappingError

JSON_CONTENT_TYPE = "application/json"

# RFC 9110 token characters: what a header name may be made of.
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


def is_http_url(value: object) -> bool:
    """True for an absolute ``http``/``https`` URL with a host."""
    if not isinstance(value, str):
        return False
    return _is_http_url(value)


@functools.lru_cache(maxsize=4096)
def _is_http_url(value: str) -> bool:
    # Cached: actions usually send to a few URLs, and this runs for every request.
    if value != value.strip() or any(c in value for c in "\r\n"):
        return False
    try:
        parts = urlsplit(value)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def is_blank(value: object) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def require(params: Mapping[str, Any], name: str) -> Any:
    """The value of a required parameter; missing, null or blank text is a mapping error."""
    value = params.get(name)
    if is_blank(value):
        raise MappingError(name, "is required but has no value for this event")
    return value


def require_text(params: Mapping[str, Any], name: str) -> str:
    """A required parameter as text (numbers and booleans are written as JSON would)."""
    return as_text(require(params, name), name)


def require_url(params: Mapping[str, Any], name: str) -> str:
    """A required parameter holding an absolute http(s) URL."""
    value = require_text(params, name).strip()
    if not is_http_url(value):
        raise MappingError(name, f"must be an absolute http(s) URL, got {value[:200]!r}")
    return value


def as_text(value: Any, name: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool | int | float):
        return orjson.dumps(value).decode()
    raise MappingError(name, f"must be text, got {type(value).__name__}")


def dump_json(value: Any, name: str) -> bytes:
    """Serialise a payload with orjson; a value JSON cannot hold is a mapping error."""
    try:
        return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
    except TypeError as exc:
        raise MappingError(name, f"cannot be written as JSON: {exc}") from exc


def check_header(name: str, value: str, parameter: str) -> None:
    """Refuse header names that are not tokens and values that would split the header."""
    if not _HEADER_NAME.match(name):
        raise MappingError(parameter, f"{name!r} is not a valid header name")
    if any(c in value for c in "\r\n\0"):
        raise MappingError(parameter, f"the value of header {name!r} contains a line break")


def map_param(params: Mapping[str, Any], name: str) -> dict[str, Any]:
    """A ``map`` parameter as a dict with text keys; missing is empty."""
    value = params.get(name)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise MappingError(name, f"must be a map of names to values, got {type(value).__name__}")
    return {str(key): item for key, item in value.items()}


def _query_values(value: Any, parameter: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, list | tuple):
        return [text for item in value for text in _query_values(item, parameter)]
    if isinstance(value, dict):
        return [dump_json(value, parameter).decode()]
    return [as_text(value, parameter)]


def with_query(url: str, params: Mapping[str, Any], parameter: str = "url_params") -> str:
    """``url`` with ``params`` added to its query; a parameter already in the URL is replaced.

    The URL's other query parameters keep their original encoding; a list value repeats
    the parameter, a null value leaves it out.
    """
    if not params:
        return url
    parts = urlsplit(url)
    kept = [
        segment
        for segment in parts.query.split("&")
        if segment and unquote_plus(segment.split("=", 1)[0]) not in params
    ]
    added = urlencode(
        [(str(k), v) for k, value in params.items() for v in _query_values(value, parameter)]
    )
    query = "&".join([*kept, added] if added else kept)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def merge_headers(base: Mapping[str, str], extra: Mapping[str, str]) -> dict[str, str]:
    """``base`` updated with ``extra``, header names compared case-insensitively."""
    replaced = {name.lower() for name in extra}
    merged = {name: value for name, value in base.items() if name.lower() not in replaced}
    merged.update(extra)
    return merged


def basic_auth(username: str, password: str) -> str:
    """The value of an ``Authorization`` header for HTTP Basic authentication."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


def json_request(
    url: str,
    payload: Any,
    *,
    method: str = "POST",
    headers: Mapping[str, str] | None = None,
    items: tuple[int, ...] = (0,),
    sensitive_headers: frozenset[str] = frozenset(),
    parameter: str = "body",
) -> HttpRequest:
    """A request carrying ``payload`` as a JSON body."""
    return HttpRequest(
        method=method,
        url=url,
        headers={"Content-Type": JSON_CONTENT_TYPE, **(headers or {})},
        body=dump_json(payload, parameter),
        items=items,
        sensitive_headers=sensitive_headers,
    )
