"""Requests and responses as they may be shown: secrets masked, bodies cut at 8 KB.

Used wherever a request leaves the delivery path for human eyes: the test-an-action
answer, traces and the error log (SPEC §2, §5).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit, urlunsplit

import orjson

from sluice.connectors.definition import HttpRequest, HttpResponse

MASK = "********"
MAX_BODY_BYTES = 8 * 1024
MIN_SECRET_LENGTH = 4  # shorter values would mask innocent text everywhere
_ELLIPSIS = "…".encode()

# Header values never shown, whatever the connector declares.
ALWAYS_SENSITIVE_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "x-api-key", "api-key", "cookie", "set-cookie"}
)
# Query parameters whose values are credentials by convention.
SENSITIVE_QUERY_PARAMS = frozenset(
    {
        "access_token",
        "api_key",
        "api-key",
        "apikey",
        "client_secret",
        "password",
        "secret",
        "sig",
        "signature",
        "token",
    }
)


def _variants(secrets: Iterable[str]) -> list[str]:
    """Each secret as it may appear: raw, URL-encoded or escaped inside a JSON string."""
    found: set[str] = set()
    for secret in secrets:
        if not isinstance(secret, str) or len(secret) < MIN_SECRET_LENGTH:
            continue
        found.update(
            (
                secret,
                quote(secret, safe=""),
                quote_plus(secret),
                orjson.dumps(secret)[1:-1].decode(),
            )
        )
    # Longest first, so a secret containing another is masked whole.
    return sorted(found, key=len, reverse=True)


def _apply(text: str, variants: list[str]) -> str:
    for variant in variants:
        text = text.replace(variant, MASK)
    return text


def mask_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of a secret (len >= 4) replaced by ``********``."""
    return _apply(text, _variants(secrets))


def _mask_header_value(value: str) -> str:
    """``********``, keeping an auth scheme word: ``Basic ********``."""
    scheme, sep, _ = value.strip().partition(" ")
    if sep and scheme.isalpha():
        return f"{scheme} {MASK}"
    return MASK


def _mask_headers(
    headers: Mapping[str, str], variants: list[str], sensitive: Iterable[str] = ()
) -> dict[str, str]:
    names = ALWAYS_SENSITIVE_HEADERS | {name.lower() for name in sensitive}
    return {
        name: _mask_header_value(value) if name.lower() in names else _apply(value, variants)
        for name, value in headers.items()
    }


def _mask_url(url: str, variants: list[str]) -> str:
    """Secrets, a password in the URL and credential-like query parameters masked."""
    url = _apply(url, variants)
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if parts.password:
        userinfo, _, host = netloc.rpartition("@")
        netloc = f"{userinfo.partition(':')[0]}:{MASK}@{host}"
    segments = []
    for segment in parts.query.split("&") if parts.query else []:
        name, sep, _ = segment.partition("=")
        if sep and unquote_plus(name).lower() in SENSITIVE_QUERY_PARAMS:
            segment = f"{name}={MASK}"
        segments.append(segment)
    return urlunsplit((parts.scheme, netloc, parts.path, "&".join(segments), parts.fragment))


def _masked_text(body: bytes, variants: list[str]) -> tuple[str, bool]:
    """The body as masked text, cut to 8 KB (masked first: a cut must not halve a secret)."""
    text = _apply(body.decode("utf-8", "replace"), variants)
    encoded = text.encode()
    if len(encoded) <= MAX_BODY_BYTES:
        return text, False
    # "ignore" drops a character split by the cut instead of showing a replacement mark.
    kept = encoded[: MAX_BODY_BYTES - len(_ELLIPSIS)].decode("utf-8", "ignore")
    return kept + "…", True


def _body(body: bytes | None, content_type: str | None, variants: list[str]) -> Any:
    """Text (cut at 8 KB), or the parsed JSON value when a whole JSON body parses."""
    if body is None:
        return None
    text, cut = _masked_text(body, variants)
    looks_json = "json" in (content_type or "").lower() or (
        not content_type and text.lstrip()[:1] in ("{", "[")
    )
    if looks_json and not cut:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return text


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def mask_request(req: HttpRequest, secrets: Iterable[str]) -> dict[str, Any]:
    """``{"method", "url", "headers", "body"}`` safe to show or store."""
    variants = _variants(secrets)
    return {
        "method": req.method,
        "url": _mask_url(req.url, variants),
        "headers": _mask_headers(req.headers, variants, req.sensitive_headers),
        "body": _body(req.body, _header(req.headers, "content-type"), variants),
    }


def mask_response(resp: HttpResponse, secrets: Iterable[str] = ()) -> dict[str, Any]:
    """``{"status", "headers", "body"}``; the body as text cut at 8 KB.

    Vendors sometimes echo what they received, so the secrets are masked here too.
    """
    variants = _variants(secrets)
    return {
        "status": resp.status,
        "headers": _mask_headers(resp.headers, variants),
        "body": _masked_text(resp.body, variants)[0],
    }
