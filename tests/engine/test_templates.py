from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from typing import Any

import pytest

from sluice.engine.templates import TemplateEngine, TemplateError, default_engine

DATA: dict[str, Any] = {
    "order_id": "A-1",
    "email": "ann@example.com",
    "phone": "+44 (0)20 7946 0958",
    "total": 12.5,
    "ts": 1714564800,
    "ts_ms": 1714564800000,
    "iso": "2024-05-01T14:00:00+02:00",
    "items": [{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 1}],
    "customer": {"name": "Ann"},
}


@pytest.fixture(scope="module")
def engine() -> TemplateEngine:
    return TemplateEngine()


def render(engine: TemplateEngine, source: str, data: dict[str, Any] = DATA) -> str:
    return engine.compile(source).render(data)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param("Order {{ order_id }}", "Order A-1", id="variable"),
        pytest.param("{{ customer.name | upcase }}", "ANN", id="standard-filter"),
        pytest.param("{{ items[1].sku }}", "B2", id="index"),
        pytest.param("{% for i in items %}{{ i.sku }},{% endfor %}", "A1,B2,", id="loop"),
        pytest.param("[{{ nope }}{{ nope.deeper.still }}]", "[]", id="undefined-renders-empty"),
        pytest.param(
            "{{ items | json }}", '[{"sku":"A1","qty":2},{"sku":"B2","qty":1}]', id="json"
        ),
        pytest.param("{{ order_id | json }}", '"A-1"', id="json-text"),
        pytest.param("{{ nope | json }}", "null", id="json-undefined"),
        pytest.param("{{ total | times: 2 | json }}", "25.0", id="json-number"),
        pytest.param(
            "{{ email | sha256 }}", hashlib.sha256(b"ann@example.com").hexdigest(), id="sha256"
        ),
        pytest.param("{{ email | md5 }}", hashlib.md5(b"ann@example.com").hexdigest(), id="md5"),
        pytest.param("[{{ nope | sha256 }}{{ nope | md5 }}]", "[]", id="hash-undefined-empty"),
        pytest.param(
            "{{ order_id | hmac_sha256: 'k' }}",
            hmac.new(b"k", b"A-1", hashlib.sha256).hexdigest(),
            id="hmac-hex",
        ),
        pytest.param(
            "{{ 'abc' | hmac_sha256: 'k', 'base64' }}",
            base64.b64encode(hmac.new(b"k", b"abc", hashlib.sha256).digest()).decode(),
            id="hmac-base64",
        ),
        pytest.param("{{ 'abc' | base64 }}", "YWJj", id="base64"),
        pytest.param("{{ 'a b&c' | url_encode }}", "a+b%26c", id="url-encode"),
        pytest.param("{{ phone | e164 }}", "+442079460958", id="e164"),
        pytest.param("[{{ nope | e164 }}]", "[]", id="e164-undefined"),
        pytest.param("{{ ts | date: '%Y-%m-%d %H:%M' }}", "2024-05-01 12:00", id="date-unix-utc"),
        pytest.param("{{ ts_ms | date: '%Y-%m-%d %H:%M' }}", "2024-05-01 12:00", id="date-unix-ms"),
        pytest.param("{{ '1714564800' | date: '%H:%M' }}", "12:00", id="date-numeric-text"),
        pytest.param("{{ iso | date: '%H:%M %z' }}", "14:00 +0200", id="date-iso-keeps-offset"),
        pytest.param("{{ '2024-05-01T12:00:00Z' | date: '%s' }}", "1714564800", id="date-epoch"),
        pytest.param("{{ '2024-05-01T12:00:00' | date: '%H %Z' }}", "12 UTC", id="date-naive-utc"),
        pytest.param("{{ 'March 14, 2016' | date: '%b %d, %y' }}", "Mar 14, 16", id="date-liquid"),
        pytest.param("{{ 'not a date' | date: '%Y' }}", "not a date", id="date-unparsable"),
        pytest.param("{{ ts | date }}", "1714564800", id="date-without-format"),
        pytest.param("{{ iso | unix_timestamp }}", "1714564800", id="unix-timestamp-iso"),
        pytest.param("{{ ts_ms | unix_timestamp }}", "1714564800", id="unix-timestamp-ms"),
        pytest.param("[{{ nope | unix_timestamp }}]", "[]", id="unix-timestamp-undefined"),
        pytest.param(
            "{{ order_id | uuid }}", str(uuid.uuid5(uuid.NAMESPACE_URL, "A-1")), id="uuid5"
        ),
    ],
)
def test_render(engine: TemplateEngine, source: str, expected: str) -> None:
    assert render(engine, source) == expected


def test_date_now_and_unix_now(engine: TemplateEngine) -> None:
    year = time.strftime("%Y", time.gmtime())
    assert render(engine, "{{ 'now' | date: '%Y' }}") == year
    assert render(engine, "{{ now | date: '%Y' }}") == year
    assert abs(int(render(engine, "{{ 'now' | unix_timestamp }}")) - time.time()) < 5


@pytest.mark.parametrize("source", ["{{ '' | uuid }}", "{{ nope | uuid }}", "{{ nil | uuid }}"])
def test_uuid_without_input_is_random(engine: TemplateEngine, source: str) -> None:
    first, second = render(engine, source), render(engine, source)
    assert first != second
    assert uuid.UUID(first).version == 4


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param(
            "{{ '0207946' | e164 }}", "e164: the phone number has no country code", id="e164"
        ),
        pytest.param("{{ 'x' | hmac_sha256 }}", "hmac_sha256 needs a key", id="hmac-no-key"),
        pytest.param("{{ 'soon' | unix_timestamp }}", "unix_timestamp: expected a time", id="unix"),
        pytest.param("{{ 5 | divided_by: 0 }}", "divide by 0", id="standard-filter-error"),
    ],
)
def test_render_errors(engine: TemplateEngine, source: str, message: str) -> None:
    with pytest.raises(TemplateError, match=message) as caught:
        render(engine, source)
    assert caught.value.line == 1


@pytest.mark.parametrize(
    ("source", "message", "line", "column"),
    [
        pytest.param("{% if %}", "missing expression", 1, 4, id="syntax"),
        pytest.param("a\nb {{ x | nope }}", "unknown filter 'nope'", 2, 10, id="unknown-filter"),
        pytest.param("{% for x in y %}", "expected tag endfor", None, None, id="unclosed"),
        pytest.param("{% include 'secrets' %}", "unexpected tag 'include'", 1, 4, id="include"),
        pytest.param("{% render 'x' %}", "unexpected tag 'render'", 1, 4, id="render"),
    ],
)
def test_compile_errors(
    engine: TemplateEngine, source: str, message: str, line: int | None, column: int | None
) -> None:
    with pytest.raises(TemplateError, match=message) as caught:
        engine.compile(source)
    assert caught.value.line == line
    if column is not None:
        assert caught.value.column == column
        assert str(caught.value).endswith(f"(line {line}, column {column})")
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize(
    "source",
    [
        pytest.param("{{ order_id.__class__ }}", id="class"),
        pytest.param("{{ order_id.__class__.__mro__ }}", id="mro"),
        pytest.param("{{ items.__class__.__init__.__globals__ }}", id="globals"),
        pytest.param("{{ customer['__class__'] }}", id="subscript"),
        pytest.param("{{ customer.__dict__ }}{{ customer.items }}", id="dict-methods"),
        pytest.param(
            "{% for i in items %}{{ forloop.__class__ }}{{ i.__init__ }}{% endfor %}", id="loop"
        ),
        pytest.param("{{ now.__class__ }}{{ now.year }}", id="datetime"),
    ],
)
def test_no_python_internals(engine: TemplateEngine, source: str) -> None:
    try:
        output = render(engine, source)
    except TemplateError:
        return
    assert output == ""


def test_python_attribute_syntax_is_refused(engine: TemplateEngine) -> None:
    with pytest.raises(TemplateError):
        engine.compile("{{ 'text'.__class__ }}")


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("{% for i in (1..100000000) %}x{% endfor %}", "loop limit", id="huge-loop"),
        pytest.param(
            "{% for i in (1..100000000) reversed %}x{% endfor %}", "loop limit", id="huge-reversed"
        ),
        pytest.param(
            "{% for a in (1..1000) %}{% for b in (1..1000) %}{% endfor %}{% endfor %}",
            "loop limit",
            id="nested-loops-multiply",
        ),
        pytest.param(
            "{% for i in (1..9000) %}{{ 'xxxxxxxxxx' }}{% endfor %}", "output limit", id="output"
        ),
        pytest.param(
            "{% capture c %}{% for i in (1..9000) %}xxxxxxxxxx{% endfor %}{% endcapture %}",
            "output limit",
            id="capture",
        ),
        pytest.param(
            "{% assign s = 'xxxxxxxxxx' %}{% for i in (1..40) %}{% assign s = s | append: s %}"
            "{% endfor %}",
            "variable size limit",
            id="doubling-string",
        ),
        pytest.param("{{ (1..100000000) | join: ',' }}", "more than 10000 items", id="range-join"),
        pytest.param("{{ (1..100000000) | json }}", "more than 10000 items", id="range-json"),
        pytest.param(
            "{% assign s = 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx' %}"
            "{% assign t = s | append: s | append: s | append: s | append: s %}"
            "{% assign t = t | append: t | append: t | append: t | append: t %}"
            "{% assign t = t | append: t | append: t | append: t | append: t %}"
            "{{ t | replace: 'x', t }}",
            "replace: would build more than",
            id="replace-multiplies",
        ),
    ],
)
def test_limits(engine: TemplateEngine, source: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(TemplateError, match=message):
        render(engine, source)
    assert time.perf_counter() - started < 1.0


def test_time_limit() -> None:
    engine = TemplateEngine(time_limit=0.02)
    busy = engine.compile(
        "{% for a in (1..100) %}{% for b in (1..99) %}"
        "{% assign q = b | plus: a | times: 3 | minus: 1 | modulo: 7 %}"
        "{% endfor %}{% endfor %}"
    )
    started = time.perf_counter()
    with pytest.raises(TemplateError, match="time limit reached: rendering took longer than 20 ms"):
        busy.render({})
    assert time.perf_counter() - started < 0.5


def test_limits_are_configurable() -> None:
    engine = TemplateEngine(loop_iteration_limit=5, output_limit=10)
    assert engine.compile("{% for i in (1..5) %}{{ i }}{% endfor %}").render({}) == "12345"
    with pytest.raises(TemplateError, match="at most 5 iterations"):
        engine.compile("{% for i in (1..6) %}{% endfor %}").render({})
    with pytest.raises(TemplateError, match="at most 10 bytes"):
        engine.compile("{{ 'ééééééé' }}").render({})  # 7 characters, 14 bytes


def test_source_limit() -> None:
    with pytest.raises(TemplateError, match="the limit is 10"):
        TemplateEngine(source_limit=10).compile("x" * 11)


def test_bad_limits() -> None:
    with pytest.raises(ValueError, match="positive"):
        TemplateEngine(time_limit=0)


def test_compiled_template_is_reusable(engine: TemplateEngine) -> None:
    template = engine.compile("{% assign n = n | plus: 1 %}{{ n }}")
    assert [template.render({"n": i}) for i in range(3)] == ["1", "2", "3"]
    assert template.source == "{% assign n = n | plus: 1 %}{{ n }}"


def test_default_engine_is_shared() -> None:
    assert default_engine() is default_engine()
