from __future__ import annotations

from typing import Any

import pytest

from sluice.connectors.definition import ActionType, Field
from sluice.engine.mapping import compile_mappings, compute_status, validate_mappings
from sluice.engine.templates import CompiledTemplate, TemplateEngine
from sluice.errors import MappingError, ValidationFailed

ACTION = ActionType(
    id="send_sms",
    name="Send SMS",
    description="A made-up action type for the tests.",
    build=lambda context, inputs: [],
    parameters=(
        Field("to", "To", required=True, group="Message"),
        Field("body", "Body", "text", required=True, group="Message"),
        Field("sender", "Sender", required=True, group="Message", default="Sluice"),
        Field("method", "Method", required=True, enum=("GET", "POST")),
        Field("headers", "Headers", "map"),
        Field("count", "Count", "integer"),
        Field("price", "Price", "number"),
        Field("vip", "VIP", "boolean"),
        Field("tags", "Tags", "list"),
        Field("extra", "Extra", "object"),
        Field("note", "Note", group="Options"),
        Field("max_batch_size", "Batch size", "integer", default=100),
    ),
)

EVENT: dict[str, Any] = {
    "order_id": "A-1",
    "customer": {"phone": "+1 (415) 555-2671", "email": " Ann@Example.COM "},
    "items": [{"sku": "A1", "qty": "2"}],
    "total": "12.50",
    "vip": "yes",
    "nothing": None,
}

REQUIRED = [
    {"parameter": "to", "attribute": "customer.phone", "transforms": ["e164"]},
    {"parameter": "body", "template": "Order {{ order_id }} ships today"},
    {"parameter": "method", "value": "POST"},
]


def resolve(mappings: list[dict[str, Any]], event: dict[str, Any] = EVENT) -> dict[str, Any]:
    return compile_mappings(ACTION, mappings, TemplateEngine()).resolve(event)


# ---------------------------------------------------------------- validation


def test_validate_normalises() -> None:
    raw = [
        {"transforms": [], "value": "POST", "parameter": "method"},
        {"parameter": "headers", "key": "X-Id", "attribute": "order_id", "transforms": ["trim"]},
    ]
    assert validate_mappings(ACTION, raw) == [
        {"parameter": "method", "value": "POST"},
        {"parameter": "headers", "key": "X-Id", "attribute": "order_id", "transforms": ["trim"]},
    ]


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        pytest.param({"parameter": "to"}, "mappings", "must be a list", id="not-a-list"),
        pytest.param(["to"], "mappings[0]", "must be an object", id="not-an-object"),
        pytest.param(
            [{"parameter": "too", "value": "x"}],
            "mappings[0].parameter",
            "unknown parameter 'too' (did you mean 'to'?); valid parameters: to, body, sender,",
            id="unknown-parameter",
        ),
        pytest.param([{"value": "x"}], "mappings[0].parameter", "is required", id="no-parameter"),
        pytest.param(
            [{"parameter": "to"}],
            "mappings[0]",
            "needs exactly one of attribute, value or template",
            id="no-source",
        ),
        pytest.param(
            [{"parameter": "to", "attribute": "a", "value": "b"}],
            "mappings[0].value",
            "give only one of attribute, value or template (found attribute and value)",
            id="two-sources",
        ),
        pytest.param(
            [{"parameter": "to", "attribute": "a..b"}],
            "mappings[0].attribute",
            "empty segment",
            id="bad-attribute",
        ),
        pytest.param(
            [{"parameter": "to", "value": "x", "transforms": ["sha1"]}],
            "mappings[0].transforms[0]",
            "unknown transform 'sha1'",
            id="bad-transform",
        ),
        pytest.param(
            [{"parameter": "body", "template": "{% if %}"}],
            "mappings[0].template",
            "missing expression (line 1, column 4)",
            id="template-syntax",
        ),
        pytest.param(
            [{"parameter": "body", "template": "{{ x | nope }}"}],
            "mappings[0].template",
            "unknown filter 'nope'",
            id="template-unknown-filter",
        ),
        pytest.param(
            [{"parameter": "headers", "attribute": "order_id"}],
            "mappings[0].key",
            "is required: 'headers' is a map parameter",
            id="map-without-key",
        ),
        pytest.param(
            [{"parameter": "to", "key": "x", "attribute": "order_id"}],
            "mappings[0].key",
            "only map parameters take a key; 'to' is string",
            id="key-on-non-map",
        ),
        pytest.param(
            [{"parameter": "to", "value": "+14155552671"}, {"parameter": "to", "value": "+1"}],
            "mappings[1].parameter",
            "'to' is already mapped by mappings[0]",
            id="duplicate-parameter",
        ),
        pytest.param(
            [
                {"parameter": "headers", "key": "A", "value": "1"},
                {"parameter": "headers", "key": "A", "value": "2"},
            ],
            "mappings[1].key",
            "key 'A' is already mapped by mappings[0]",
            id="duplicate-map-key",
        ),
        pytest.param(
            [{"parameter": "count", "value": "many"}],
            "mappings[0].value",
            "expected a number, got text",
            id="constant-wrong-type",
        ),
        pytest.param(
            [{"parameter": "method", "value": "FETCH"}],
            "mappings[0].value",
            "expected one of GET, POST",
            id="constant-not-in-enum",
        ),
        pytest.param(
            [{"parameter": "to", "value": "0612", "transforms": ["e164"]}],
            "mappings[0].value",
            "transform 'e164': the phone number has no country code",
            id="constant-transform-fails",
        ),
        pytest.param(
            [{"parameter": "to", "value": None}], "mappings[0].value", "must not be null", id="null"
        ),
        pytest.param(
            [{"parameter": "to", "value": "x", "default": "y"}],
            "mappings[0].default",
            "unknown key",
            id="unknown-key",
        ),
    ],
)
def test_validation_errors(raw: Any, field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_mappings(ACTION, raw)
    assert caught.value.details[0]["field"] == field
    assert message in caught.value.details[0]["message"]


def test_validation_reports_every_problem() -> None:
    raw = [
        {"parameter": "nope", "value": 1},
        {"parameter": "to"},
        {"parameter": "count", "value": "x"},
    ]
    with pytest.raises(ValidationFailed) as caught:
        validate_mappings(ACTION, raw)
    fields = [d["field"] for d in caught.value.details]
    assert fields == ["mappings[0].parameter", "mappings[1]", "mappings[2].value"]


# ---------------------------------------------------------------- status


@pytest.mark.parametrize(
    ("mappings", "expected"),
    [
        pytest.param(
            REQUIRED,
            {
                "state": "COMPLETED",
                "groups": {"Message": "COMPLETED", "Required": "COMPLETED"},
                "missing": [],
            },
            id="complete",
        ),
        pytest.param(
            [],
            {
                "state": "INCOMPLETE",
                "groups": {"Message": "INCOMPLETE", "Required": "INCOMPLETE"},
                "missing": ["to", "body", "method"],
            },
            id="nothing-mapped",
        ),
        pytest.param(
            [{"parameter": "method", "value": "GET"}, {"parameter": "body", "value": "hi"}],
            {
                "state": "INCOMPLETE",
                "groups": {"Message": "INCOMPLETE", "Required": "COMPLETED"},
                "missing": ["to"],
            },
            id="one-group-incomplete",
        ),
        pytest.param(
            [*REQUIRED, {"parameter": "note", "value": "x"}],
            {
                "state": "COMPLETED",
                "groups": {"Message": "COMPLETED", "Required": "COMPLETED"},
                "missing": [],
            },
            id="optional-groups-have-no-status",
        ),
    ],
)
def test_compute_status(mappings: list[dict[str, Any]], expected: dict[str, Any]) -> None:
    assert compute_status(ACTION, mappings) == expected


# ---------------------------------------------------------------- resolution


def test_resolve_sources_transforms_and_defaults() -> None:
    assert resolve(REQUIRED) == {
        "to": "+14155552671",
        "body": "Order A-1 ships today",
        "method": "POST",
        "sender": "Sluice",
        "max_batch_size": 100,
    }


def test_resolve_map_parameter() -> None:
    mappings = [
        *REQUIRED,
        {"parameter": "headers", "key": "X-Order", "attribute": "order_id"},
        {
            "parameter": "headers",
            "key": "X-Email",
            "attribute": "customer.email",
            "transforms": ["trim", "lowercase"],
        },
        {"parameter": "headers", "key": "X-Source", "value": "sluice"},
        {"parameter": "headers", "key": "X-Absent", "attribute": "nope"},
    ]
    assert resolve(mappings)["headers"] == {
        "X-Order": "A-1",
        "X-Email": "ann@example.com",
        "X-Source": "sluice",
    }


@pytest.mark.parametrize(
    ("mapping", "expected"),
    [
        pytest.param(
            {"parameter": "count", "template": "{{ items[0].qty }}"}, 2, id="integer-from-text"
        ),
        pytest.param({"parameter": "count", "template": "3.0"}, 3, id="integer-from-whole-float"),
        pytest.param({"parameter": "count", "attribute": "items.0.qty"}, 2, id="integer-attribute"),
        pytest.param({"parameter": "price", "attribute": "total"}, 12.5, id="number-attribute"),
        pytest.param(
            {"parameter": "price", "template": " {{ total }} "}, 12.5, id="number-template"
        ),
        pytest.param({"parameter": "vip", "attribute": "vip"}, True, id="boolean-yes"),
        pytest.param({"parameter": "vip", "template": "false"}, False, id="boolean-text"),
        pytest.param(
            {"parameter": "tags", "template": '["a", {{ total }}]'}, ["a", 12.5], id="list-json"
        ),
        pytest.param(
            {"parameter": "tags", "attribute": "items"},
            [{"sku": "A1", "qty": "2"}],
            id="list-attribute",
        ),
        pytest.param(
            {"parameter": "extra", "template": "{{ customer | json }}"},
            EVENT["customer"],
            id="object-json",
        ),
        pytest.param(
            {"parameter": "note", "attribute": "total", "transforms": ["to_number"]},
            "12.5",
            id="string-from-number",
        ),
        pytest.param(
            {"parameter": "note", "attribute": "items"},
            '[{"sku":"A1","qty":"2"}]',
            id="string-from-list",
        ),
        pytest.param({"parameter": "max_batch_size", "value": "50"}, 50, id="constant-converted"),
    ],
)
def test_type_conversion(mapping: dict[str, Any], expected: Any) -> None:
    assert resolve([*REQUIRED, mapping])[mapping["parameter"]] == expected


@pytest.mark.parametrize(
    "mapping",
    [
        pytest.param({"parameter": "note", "attribute": "nope"}, id="absent"),
        pytest.param({"parameter": "note", "attribute": "nothing"}, id="null"),
        pytest.param({"parameter": "count", "template": "{{ nope }}"}, id="empty-text-for-number"),
        pytest.param({"parameter": "tags", "template": " "}, id="blank-text-for-list"),
    ],
)
def test_absent_values_leave_the_parameter_out(mapping: dict[str, Any]) -> None:
    assert mapping["parameter"] not in resolve([*REQUIRED, mapping])


def test_absent_value_falls_back_to_default() -> None:
    mapping = {"parameter": "max_batch_size", "attribute": "nope"}
    assert resolve([*REQUIRED, mapping])["max_batch_size"] == 100


def test_empty_text_is_kept_for_optional_text() -> None:
    assert resolve([*REQUIRED, {"parameter": "note", "template": "{{ nope }}"}])["note"] == ""


@pytest.mark.parametrize(
    ("mappings", "event", "parameter", "message"),
    [
        pytest.param(
            REQUIRED,
            {"order_id": "A-1"},
            "to",
            "required parameter has no value (attribute 'customer.phone' gave none)",
            id="required-attribute-absent",
        ),
        pytest.param(
            [REQUIRED[0], {"parameter": "body", "template": "{{ nope }}"}, REQUIRED[2]],
            EVENT,
            "body",
            "required parameter has no value (template gave none)",
            id="required-template-empty",
        ),
        pytest.param(
            REQUIRED[1:], EVENT, "to", "required parameter is not mapped", id="required-unmapped"
        ),
        pytest.param(
            REQUIRED,
            {**EVENT, "customer": {"phone": "0612 345 678"}},
            "to",
            "attribute 'customer.phone': transform 'e164': the phone number has no country code",
            id="transform-fails",
        ),
        pytest.param(
            [*REQUIRED, {"parameter": "count", "attribute": "order_id"}],
            EVENT,
            "count",
            "attribute 'order_id': expected a number, got text",
            id="conversion-fails",
        ),
        pytest.param(
            [REQUIRED[0], REQUIRED[1], {"parameter": "method", "attribute": "order_id"}],
            EVENT,
            "method",
            "attribute 'order_id': expected one of GET, POST",
            id="enum",
        ),
        pytest.param(
            [
                REQUIRED[0],
                {"parameter": "body", "template": "{% for i in (1..100000) %}{% endfor %}"},
                REQUIRED[2],
            ],
            EVENT,
            "body",
            "template: loop limit reached",
            id="template-limit",
        ),
        pytest.param(
            [
                *REQUIRED,
                {"parameter": "headers", "key": "X-Phone", "template": "{{ order_id | e164 }}"},
            ],
            EVENT,
            "headers",
            "template for key 'X-Phone': e164:",
            id="map-entry-template-fails",
        ),
    ],
)
def test_mapping_errors(
    mappings: list[dict[str, Any]], event: dict[str, Any], parameter: str, message: str
) -> None:
    with pytest.raises(MappingError) as caught:
        resolve(mappings, event)
    assert caught.value.parameter == parameter
    assert message in caught.value.message


class CountingEngine(TemplateEngine):
    def __init__(self) -> None:
        super().__init__()
        self.compiled = 0

    def compile(self, source: str) -> CompiledTemplate:
        self.compiled += 1
        return super().compile(source)


def test_templates_compile_once() -> None:
    engine = CountingEngine()
    compiled = compile_mappings(ACTION, REQUIRED, engine)
    for order in range(5):
        assert (
            compiled.resolve({**EVENT, "order_id": order})["body"] == f"Order {order} ships today"
        )
    assert engine.compiled == 1


def test_constant_lists_are_not_shared() -> None:
    compiled = compile_mappings(ACTION, [*REQUIRED, {"parameter": "tags", "value": ["a"]}])
    first = compiled.resolve(EVENT)
    first["tags"].append("b")
    assert compiled.resolve(EVENT)["tags"] == ["a"]


def test_compile_rejects_mappings_that_no_longer_fit() -> None:
    with pytest.raises(ValidationFailed, match="unknown parameter"):
        compile_mappings(ACTION, [{"parameter": "gone", "value": 1}])
