from __future__ import annotations

from typing import Any

import pytest

from sluice.engine.conditions import OPERATORS, compile_conditions, validate_conditions
from sluice.errors import ValidationFailed

EVENT: dict[str, Any] = {
    "tealium_event": "Purchase",
    "order_total": 120.5,
    "quantity": "3",
    "sku": "007",
    "zero": 0,
    "flag": True,
    "opt_in": "Yes",
    "opt_out": "off",
    "tags": ["sale", "New", 10],
    "customer": {"email": "Ann@Example.com", "tier": "gold"},
    "items": [{"sku": "A1", "price": "9.99"}],
    "empty": "",
    "nothing": None,
    "attrs": {"color": "red"},
}


def matches(condition: dict[str, Any], event: dict[str, Any] = EVENT) -> bool:
    return compile_conditions([[condition]])(event)


def cond(attribute: str, operator: str, value: Any = None, **extra: Any) -> dict[str, Any]:
    result = {"attribute": attribute, "operator": operator, **extra}
    if value is not None:
        result["value"] = value
    return result


CASES = [
    # equals
    ("tealium_event", "equals", "Purchase", False, True, "equals-text"),
    ("tealium_event", "equals", "purchase", False, False, "equals-case-sensitive"),
    ("tealium_event", "equals", "purchase", True, True, "equals-ignore-case"),
    ("order_total", "equals", 120.5, False, True, "equals-number"),
    ("order_total", "equals", "120.50", False, True, "equals-number-vs-numeric-text"),
    ("quantity", "equals", 3, False, True, "equals-numeric-text-vs-number"),
    ("quantity", "equals", 3.0, False, True, "equals-numeric-text-vs-float"),
    ("sku", "equals", "7", False, False, "equals-two-texts-compare-as-text"),
    ("sku", "equals", 7, False, True, "equals-text-vs-real-number"),
    ("flag", "equals", True, False, True, "equals-bool"),
    ("flag", "equals", "true", False, True, "equals-bool-vs-text"),
    ("flag", "equals", "TRUE", True, True, "equals-bool-ignore-case"),
    ("flag", "equals", 1, False, False, "equals-bool-is-not-1"),
    ("tags", "equals", "sale", False, False, "equals-list-never"),
    ("empty", "equals", "", False, True, "equals-empty-text"),
    ("items.0.sku", "equals", "A1", False, True, "equals-nested-path"),
    # not_equals
    ("tealium_event", "not_equals", "view", False, True, "not-equals"),
    ("tealium_event", "not_equals", "Purchase", False, False, "not-equals-same"),
    ("tealium_event", "not_equals", "PURCHASE", True, False, "not-equals-ignore-case"),
    ("missing", "not_equals", "x", False, True, "not-equals-missing"),
    ("nothing", "not_equals", "x", False, True, "not-equals-null"),
    ("items.3.sku", "not_equals", "x", False, True, "not-equals-missing-path"),
    # contains
    ("customer.email", "contains", "example", False, False, "contains-case"),
    ("customer.email", "contains", "EXAMPLE", True, True, "contains-ignore-case"),
    ("tags", "contains", "sale", False, True, "contains-list-member"),
    ("tags", "contains", "sal", False, False, "contains-list-not-substring"),
    ("tags", "contains", "new", True, True, "contains-list-ignore-case"),
    ("tags", "contains", "10", False, True, "contains-list-number"),
    ("order_total", "contains", "20.", False, True, "contains-number-text"),
    ("attrs", "contains", "color", False, True, "contains-object-key"),
    ("attrs", "contains", "COLOR", True, True, "contains-object-key-ignore-case"),
    ("missing", "contains", "x", False, False, "contains-missing"),
    # not_contains
    ("tags", "not_contains", "old", False, True, "not-contains"),
    ("tags", "not_contains", "sale", False, False, "not-contains-member"),
    ("missing", "not_contains", "x", False, True, "not-contains-missing"),
    # starts_with / ends_with
    ("customer.email", "starts_with", "Ann", False, True, "starts-with"),
    ("customer.email", "starts_with", "ann", False, False, "starts-with-case"),
    ("customer.email", "starts_with", "ann", True, True, "starts-with-ignore-case"),
    ("customer.email", "ends_with", ".COM", True, True, "ends-with-ignore-case"),
    ("customer.email", "ends_with", ".org", False, False, "ends-with-no"),
    ("order_total", "starts_with", "120", False, True, "starts-with-number"),
    ("tags", "starts_with", "sale", False, False, "starts-with-list-never"),
    ("missing", "starts_with", "", False, False, "starts-with-missing"),
    ("missing", "ends_with", "", False, False, "ends-with-missing"),
    # regex
    ("customer.email", "regex", r"^[a-z]+@", False, False, "regex-case"),
    ("customer.email", "regex", r"^[a-z]+@", True, True, "regex-ignore-case"),
    ("sku", "regex", r"\d{3}", False, True, "regex-search"),
    ("order_total", "regex", r"^120\.5$", False, True, "regex-number"),
    ("missing", "regex", ".*", False, False, "regex-missing"),
    # exists / not_exists
    ("empty", "exists", None, False, True, "exists-empty-text"),
    ("zero", "exists", None, False, True, "exists-zero"),
    ("nothing", "exists", None, False, False, "exists-null"),
    ("missing", "exists", None, False, False, "exists-missing"),
    ("customer.tier", "exists", None, False, True, "exists-nested"),
    ("missing", "not_exists", None, False, True, "not-exists-missing"),
    ("nothing", "not_exists", None, False, True, "not-exists-null"),
    ("sku", "not_exists", None, False, False, "not-exists-present"),
    # gt / gte / lt / lte
    ("order_total", "gt", 100, False, True, "gt"),
    ("order_total", "gt", 120.5, False, False, "gt-equal"),
    ("order_total", "gte", "120.5", False, True, "gte-numeric-text-value"),
    ("quantity", "lt", 4, False, True, "lt-numeric-text-attribute"),
    ("quantity", "lte", 3, False, True, "lte-equal"),
    ("items.0.price", "lt", 10, False, True, "lt-nested"),
    ("tealium_event", "gt", 0, False, False, "gt-non-numeric"),
    ("flag", "gt", 0, False, False, "gt-bool-is-not-a-number"),
    ("missing", "lt", 10, False, False, "lt-missing"),
    # in
    ("tealium_event", "in", ["view", "Purchase"], False, True, "in"),
    ("tealium_event", "in", ["purchase"], False, False, "in-case"),
    ("tealium_event", "in", ["PURCHASE"], True, True, "in-ignore-case"),
    ("quantity", "in", [1, 2, 3], False, True, "in-numeric-text-vs-numbers"),
    ("order_total", "in", ["120.5"], False, True, "in-number-vs-numeric-text"),
    ("flag", "in", [True], False, True, "in-bool"),
    ("tags", "in", ["x", "sale"], False, True, "in-list-overlap"),
    ("tags", "in", ["x"], False, False, "in-list-no-overlap"),
    ("missing", "in", ["x"], False, False, "in-missing"),
    # is_true / is_false
    ("flag", "is_true", None, False, True, "is-true-bool"),
    ("opt_in", "is_true", None, False, True, "is-true-yes"),
    ("opt_out", "is_true", None, False, False, "is-true-off"),
    ("opt_out", "is_false", None, False, True, "is-false-off"),
    ("zero", "is_false", None, False, True, "is-false-zero"),
    ("quantity", "is_true", None, False, False, "is-true-3-text-is-neither"),
    ("tealium_event", "is_false", None, False, False, "is-false-other-text"),
    ("missing", "is_true", None, False, False, "is-true-missing"),
    ("missing", "is_false", None, False, False, "is-false-missing"),
]


@pytest.mark.parametrize(
    ("attribute", "operator", "value", "ignore_case", "expected"),
    [pytest.param(*case[:5], id=case[5]) for case in CASES],
)
def test_operator(
    attribute: str, operator: str, value: Any, ignore_case: bool, expected: bool
) -> None:
    assert matches(cond(attribute, operator, value, ignore_case=ignore_case)) is expected


def test_every_operator_is_covered() -> None:
    assert {case[1] for case in CASES} == set(OPERATORS)


@pytest.mark.parametrize("operator", OPERATORS)
def test_missing_attribute(operator: str) -> None:
    value: Any = {"in": ["x"], "regex": "x", "gt": 1, "gte": 1, "lt": 1, "lte": 1}.get(
        operator, "x"
    )
    condition = cond("not_there", operator, value)
    expected = operator in ("not_exists", "not_equals", "not_contains")
    assert matches(condition) is expected
    assert matches(condition, {"not_there": None}) is expected


@pytest.mark.parametrize(
    ("conditions", "expected"),
    [
        pytest.param([], True, id="empty-matches-all"),
        pytest.param([[cond("sku", "equals", "007"), cond("zero", "equals", 0)]], True, id="and"),
        pytest.param(
            [[cond("sku", "equals", "007"), cond("zero", "equals", 1)]], False, id="and-fails"
        ),
        pytest.param(
            [[cond("sku", "equals", "x")], [cond("zero", "equals", 0)]], True, id="or-second"
        ),
        pytest.param(
            [[cond("sku", "equals", "x")], [cond("zero", "equals", 1)]], False, id="or-none"
        ),
        pytest.param(
            [[cond("sku", "exists"), cond("flag", "is_true"), cond("quantity", "gt", 2)]],
            True,
            id="three-and",
        ),
    ],
)
def test_groups(conditions: list[list[dict[str, Any]]], expected: bool) -> None:
    assert compile_conditions(conditions)(EVENT) is expected


def test_validate_normalises() -> None:
    raw = [[{"attribute": "a", "operator": "exists", "value": "ignored"}, cond("b", "equals", 1)]]
    assert validate_conditions(raw) == [
        [
            {"attribute": "a", "operator": "exists", "ignore_case": False},
            {"attribute": "b", "operator": "equals", "value": 1, "ignore_case": False},
        ]
    ]


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        pytest.param({"a": 1}, "conditions", "must be a list", id="not-a-list"),
        pytest.param(["x"], "conditions[0]", "must be a list of conditions", id="group-not-list"),
        pytest.param([[]], "conditions[0]", "at least one condition", id="empty-group"),
        pytest.param([["x"]], "conditions[0][0]", "must be an object", id="condition-not-object"),
        pytest.param(
            [[cond("a", "exists")], [cond("a", "equal", "x")]],
            "conditions[1][0].operator",
            "unknown operator 'equal' (did you mean 'equals'?); valid operators: equals, not_",
            id="unknown-operator",
        ),
        pytest.param(
            [[cond("a", "greater", 1)]],
            "conditions[0][0].operator",
            "unknown operator 'greater' (did you mean 'gte'?)",
            id="operator-alias-hint",
        ),
        pytest.param(
            [[cond("a", ">=", 1)]],
            "conditions[0][0].operator",
            "unknown operator '>=' (did you mean 'gte'?)",
            id="operator-symbol-hint",
        ),
        pytest.param(
            [[{"attribute": "a"}]], "conditions[0][0].operator", "is required", id="no-op"
        ),
        pytest.param(
            [[cond("a", "exists"), {"operator": "exists"}]],
            "conditions[0][1].attribute",
            "is required",
            id="no-attribute",
        ),
        pytest.param(
            [[cond("a..b", "exists")]], "conditions[0][0].attribute", "empty segment", id="bad-path"
        ),
        pytest.param(
            [[cond("a", "equals")]],
            "conditions[0][0].value",
            "is required for operator 'equals'",
            id="missing-value",
        ),
        pytest.param(
            [[cond("a", "equals", ["x"])]],
            "conditions[0][0].value",
            "must be a string, number or boolean",
            id="list-value",
        ),
        pytest.param(
            [[cond("a", "in", "x")]],
            "conditions[0][0].value",
            "must be a list of values for operator 'in'",
            id="in-without-list",
        ),
        pytest.param(
            [[cond("a", "in", [])]], "conditions[0][0].value", "at least one value", id="in-empty"
        ),
        pytest.param(
            [[cond("a", "in", ["x", {"y": 1}])]],
            "conditions[0][0].value[1]",
            "must be a string, number or boolean",
            id="in-bad-element",
        ),
        pytest.param(
            [[cond("a", "gt", "ten")]],
            "conditions[0][0].value",
            "must be a number for operator 'gt'",
            id="gt-not-number",
        ),
        pytest.param(
            [[cond("a", "lte", True)]],
            "conditions[0][0].value",
            "must be a number",
            id="lte-bool",
        ),
        pytest.param(
            [[cond("a", "regex", "(unclosed")]],
            "conditions[0][0].value",
            "invalid regular expression: missing ), unterminated subpattern",
            id="bad-regex",
        ),
        pytest.param(
            [[cond("a", "equals", "x", ignore_case="yes")]],
            "conditions[0][0].ignore_case",
            "must be true or false",
            id="ignore-case-not-bool",
        ),
        pytest.param(
            [[cond("a", "equals", "x", negate=True)]],
            "conditions[0][0].negate",
            "unknown key",
            id="unknown-key",
        ),
    ],
)
def test_validation_errors(raw: Any, field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_conditions(raw)
    detail = caught.value.details[0]
    assert detail["field"] == field
    assert message in detail["message"]
    assert caught.value.status_code == 422


def test_validation_reports_every_problem() -> None:
    raw = [[cond("a", "nope", "x"), cond("b", "equals")], [cond("c", "gt", "x")]]
    with pytest.raises(ValidationFailed) as caught:
        validate_conditions(raw, field="rules[0].when")
    fields = [d["field"] for d in caught.value.details]
    assert fields == [
        "rules[0].when[0][0].operator",
        "rules[0].when[0][1].value",
        "rules[0].when[1][0].value",
    ]
    assert str(caught.value).endswith("(and 2 more)")


def test_compile_rejects_invalid() -> None:
    with pytest.raises(ValidationFailed):
        compile_conditions([[cond("a", "bogus", "x")]])
