"""Masking: secrets never reach a screen, a trace or the error log."""

from __future__ import annotations

import base64

import orjson
import pytest

from sluice.connectors.definition import HttpRequest, HttpResponse
from sluice.connectors.masking import MASK, MAX_BODY_BYTES, mask_request, mask_response, mask_text

SECRET = "s3cr3t/tok+en"


def masked(req: HttpRequest, secrets: tuple[str, ...] = (SECRET,)) -> dict[str, object]:
    return mask_request(req, secrets)


def test_secret_is_masked_in_url_headers_and_body() -> None:
    req = HttpRequest(
        "POST",
        f"https://x.example/in?key={SECRET}",
        {"X-Custom": f"v-{SECRET}", "Content-Type": "application/json"},
        orjson.dumps({"token": SECRET, "order": "A-1"}),
    )
    shown = masked(req)
    assert shown == {
        "method": "POST",
        "url": f"https://x.example/in?key={MASK}",
        "headers": {"X-Custom": f"v-{MASK}", "Content-Type": "application/json"},
        "body": {"token": MASK, "order": "A-1"},
    }


@pytest.mark.parametrize(
    "encoded",
    ["my%20secret%2F1", "my+secret%2F1", "my secret/1"],
    ids=["quote", "quote-plus", "raw"],
)
def test_url_encoded_secrets_are_masked(encoded: str) -> None:
    shown = mask_request(
        HttpRequest("GET", f"https://x.example/p?q={encoded}&n=1"), ["my secret/1"]
    )
    assert shown["url"] == f"https://x.example/p?q={MASK}&n=1"


def test_json_escaped_secret_is_masked() -> None:
    secret = 'pa"ss\\word'
    body = orjson.dumps({"password": secret})
    shown = mask_request(HttpRequest("POST", "https://x.example", {}, body), [secret])
    assert shown["body"] == {"password": MASK}


@pytest.mark.parametrize(
    ("name", "value", "shown"),
    [
        ("Authorization", "Basic " + base64.b64encode(b"ada:pw").decode(), f"Basic {MASK}"),
        ("authorization", "Bearer abc.def", f"Bearer {MASK}"),
        ("Proxy-Authorization", "Basic eHl6", f"Basic {MASK}"),
        ("X-Api-Key", "k-1234", MASK),
        ("api-key", "k-1234", MASK),
        ("Cookie", "session=abc; theme=dark", MASK),
        ("X-Signature", "sha256=abc", f"{MASK}"),
        ("X-Other", "visible", "visible"),
    ],
    ids=["basic", "bearer", "proxy", "x-api-key", "api-key", "cookie", "declared", "plain"],
)
def test_sensitive_headers_are_masked(name: str, value: str, shown: str) -> None:
    req = HttpRequest(
        "GET", "https://x.example", {name: value}, sensitive_headers=frozenset({"x-signature"})
    )
    assert mask_request(req, [])["headers"] == {name: shown}


def test_short_and_empty_secrets_are_ignored() -> None:
    req = HttpRequest("POST", "https://x.example/abc", {}, b"abc")
    assert mask_request(req, ["abc", "", "ab"]) == {
        "method": "POST",
        "url": "https://x.example/abc",
        "headers": {},
        "body": "abc",
    }


def test_longest_secret_is_masked_first() -> None:
    assert mask_text("key=abcd-efgh", ["abcd", "abcd-efgh"]) == f"key={MASK}"


def test_url_password_and_credential_query_parameters_are_masked() -> None:
    url = "https://ada:hunter22@x.example/p?api_key=zz&Token=yy&page=2&sig"
    assert masked(HttpRequest("GET", url))["url"] == (
        f"https://ada:{MASK}@x.example/p?api_key={MASK}&Token={MASK}&page=2&sig"
    )


@pytest.mark.parametrize(
    ("body", "content_type", "shown"),
    [
        (None, None, None),
        (b"", "text/plain", ""),
        (b"a=1&b=2", "application/x-www-form-urlencoded", "a=1&b=2"),
        (b'{"a": 1}', None, {"a": 1}),
        (b"[1, 2]", "application/vnd.api+json", [1, 2]),
        (b"42", "text/plain", "42"),
        (b"{not json", "application/json", "{not json"),
        (b"\xff\xfe", "application/octet-stream", "\ufffd\ufffd"),
    ],
    ids=[
        "none",
        "empty",
        "form",
        "json-sniffed",
        "json-type",
        "text-number",
        "broken-json",
        "binary",
    ],
)
def test_body_display(body: bytes | None, content_type: str | None, shown: object) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    assert (
        mask_request(HttpRequest("POST", "https://x.example", headers, body), [])["body"] == shown
    )


def test_big_bodies_are_cut_at_8_kb_after_masking() -> None:
    big = orjson.dumps({"events": ["é" * 100] * 100, "token": SECRET})
    body = b"x" * (MAX_BODY_BYTES - 5) + SECRET.encode() + big
    shown = masked(
        HttpRequest("POST", "https://x.example", {"Content-Type": "application/json"}, body)
    )
    text = shown["body"]
    assert isinstance(text, str)
    assert len(text.encode()) <= MAX_BODY_BYTES
    assert text.endswith("…")
    assert "s3cr" not in text


def test_response_is_masked_and_cut() -> None:
    resp = HttpResponse(
        400,
        {"content-type": "text/plain", "set-cookie": "sid=1; HttpOnly"},
        f"bad token {SECRET} ".encode() + b"y" * 20_000,
    )
    shown = mask_response(resp, [SECRET])
    assert shown["status"] == 400
    assert shown["headers"] == {"content-type": "text/plain", "set-cookie": MASK}
    body = shown["body"]
    assert isinstance(body, str)
    assert body.startswith(f"bad token {MASK} yyy")
    assert len(body.encode()) <= MAX_BODY_BYTES


def test_response_body_stays_text() -> None:
    assert mask_response(HttpResponse(200, {}, b'{"ok": true}'))["body"] == '{"ok": true}'
