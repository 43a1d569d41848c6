"""Each operation of each visitor attribute type, applied to a profile (no database)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from sluice.audiences.model import Visit, VisitorProfile, new_profile
from sluice.audiences.rules import OPERATIONS, check_rules, compile_attribute
from sluice.errors import ValidationFailed

AT = 1_700_000_000.0  # 2023-11-14T22:13:20Z

# (type, rule, events in order, expected value afterwards; None: absent)
CASES: list[tuple[str, str, dict[str, Any], list[dict[str, Any]], Any]] = [
    ("number-increment-by-1", "number", {"operation": "increment"}, [{}, {}], 2),
    ("number-increment-value", "number", {"operation": "increment", "value": 2.5}, [{}], 2.5),
    (
        "number-increment-attribute",
        "number",
        {"operation": "increment", "attribute": "total"},
        [{"total": 10}, {"total": "5.5"}, {"total": "n/a"}, {}],
        15.5,
    ),
    ("number-decrement", "number", {"operation": "decrement", "value": 3}, [{}, {}], -6),
    (
        "number-decrement-attribute",
        "number",
        {"operation": "decrement", "attribute": "refund"},
        [{"refund": 4}],
        -4,
    ),
    ("number-set-value", "number", {"operation": "set", "value": 7}, [{}], 7),
    (
        "number-set-attribute",
        "number",
        {"operation": "set", "attribute": "cart.total"},
        [{"cart": {"total": 12}}, {"cart": {"total": 30}}],
        30,
    ),
    (
        "string-set",
        "string",
        {"operation": "set", "attribute": "city"},
        [{"city": "Oslo"}, {"city": "Rome"}],
        "Rome",
    ),
    ("string-set-value", "string", {"operation": "set", "value": "gold"}, [{}], "gold"),
    (
        "string-set-first",
        "string",
        {"operation": "set_first", "attribute": "source"},
        [{}, {"source": "email"}, {"source": "ads"}],
        "email",
    ),
    ("boolean-set-true", "boolean", {"operation": "set_true"}, [{}], True),
    ("boolean-set-false", "boolean", {"operation": "set_false"}, [{}], False),
    ("date-set-now", "date", {"operation": "set_now"}, [{}], "2023-11-14T22:13:20.000Z"),
    (
        "date-set-iso",
        "date",
        {"operation": "set", "attribute": "signup"},
        [{"signup": "2024-01-02T03:04:05Z"}],
        "2024-01-02T03:04:05.000Z",
    ),
    (
        "date-set-epoch-ms",
        "date",
        {"operation": "set", "attribute": "signup"},
        [{"signup": 1704164645000}, {"signup": "not a date"}],
        "2024-01-02T03:04:05.000Z",
    ),
    (
        "set-add-attribute",
        "set",
        {"operation": "add", "attribute": "category"},
        [{"category": "shoes"}, {"category": ["hats", "shoes"]}, {"category": 7}],
        ["7", "hats", "shoes"],
    ),
    ("set-add-value", "set", {"operation": "add", "value": ["b", "a"]}, [{}, {}], ["a", "b"]),
    (
        "set-remove",
        "set",
        {"operation": "remove", "attribute": "category"},
        [{"category": "shoes"}, {"category": ["hats", "socks"]}],
        [],
    ),
    (
        "tally-increment",
        "tally",
        {"operation": "increment", "attribute": "category"},
        [{"category": "shoes"}, {"category": "shoes"}, {"category": ["hats", "shoes"]}, {}],
        {"shoes": 3, "hats": 1},
    ),
    (
        "tally-increment-value",
        "tally",
        {"operation": "increment", "attribute": "category", "value": 2},
        [{"category": "shoes"}],
        {"shoes": 2},
    ),
]


@pytest.mark.parametrize(
    ("type_", "rule", "events", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_operation(
    type_: str, rule: dict[str, Any], events: list[dict[str, Any]], expected: Any
) -> None:
    checked = check_rules([rule], type_)
    attribute = compile_attribute(
        {"name": "a", "scope": "visitor", "type": type_, "rules": checked}
    )
    profile = new_profile("v1", AT)
    if rule["operation"] == "remove" and type_ == "set":
        profile.attributes["a"] = ["hats", "shoes"]
    for event in events:
        held = profile.attributes.get("a")
        copied = copy.deepcopy(held)
        attribute.apply(profile, event, AT)
        assert held == copied  # values are replaced, never changed in place
    assert profile.attributes.get("a") == expected


def test_every_operation_is_covered() -> None:
    covered = {(c[1], c[2]["operation"]) for c in CASES}
    wanted = {(t, op) for t, ops in OPERATIONS.items() for op in ops if t != "badge"}
    assert wanted <= covered


def test_badges_assign_and_remove() -> None:
    assign = compile_attribute(
        {
            "name": "VIP",
            "scope": "visitor",
            "type": "badge",
            "rules": check_rules(
                [
                    {
                        "operation": "assign",
                        "when": [[{"attribute": "tier", "operator": "equals", "value": "gold"}]],
                    }
                ],
                "badge",
            ),
        }
    )
    remove = compile_attribute(
        {
            "name": "VIP",
            "scope": "visitor",
            "type": "badge",
            "rules": check_rules(
                [
                    {
                        "operation": "remove",
                        "when": [[{"attribute": "tier", "operator": "equals", "value": "none"}]],
                    }
                ],
                "badge",
            ),
        }
    )
    profile = new_profile("v1", AT)
    assign.apply(profile, {"tier": "silver"}, AT)
    assert profile.badges == []
    assign.apply(profile, {"tier": "gold"}, AT)
    assign.apply(profile, {"tier": "gold"}, AT)
    assert profile.badges == ["VIP"]
    remove.apply(profile, {"tier": "none"}, AT)
    assert profile.badges == []


def test_visit_scope_writes_to_the_visit() -> None:
    attribute = compile_attribute(
        {
            "name": "views",
            "scope": "visit",
            "type": "number",
            "rules": check_rules([{"operation": "increment"}], "number"),
        }
    )
    profile = new_profile("v1", AT)
    attribute.apply(profile, {}, AT)  # no visit: nothing to count into
    profile.visit = Visit(AT, AT)
    attribute.apply(profile, {}, AT)
    assert profile.visit.attributes == {"views": 1}
    assert profile.attributes == {}


def test_a_snapshot_undoes_an_event() -> None:
    profile = VisitorProfile("v1", AT, AT, attributes={"s": ["a"], "n": 1}, visit=Visit(AT, AT))
    attributes = [
        compile_attribute(
            {
                "name": "s",
                "scope": "visitor",
                "type": "set",
                "rules": check_rules([{"operation": "add", "attribute": "x"}], "set"),
            }
        ),
        compile_attribute(
            {
                "name": "n",
                "scope": "visitor",
                "type": "number",
                "rules": check_rules([{"operation": "increment"}], "number"),
            }
        ),
        compile_attribute(
            {
                "name": "t",
                "scope": "visit",
                "type": "tally",
                "rules": check_rules([{"operation": "increment", "attribute": "x"}], "tally"),
            }
        ),
    ]
    before = profile.dumps()
    snapshot = profile.snapshot()
    for attribute in attributes:
        attribute.apply(profile, {"x": "b"}, AT)
    assert profile.dumps() != before
    profile.restore(snapshot)
    assert profile.dumps() == before


@pytest.mark.parametrize(
    ("type_", "rule", "field"),
    [
        ("number", {"operation": "append"}, "rules[0].operation"),
        ("number", {"operation": "increment", "value": "1"}, "rules[0].value"),
        ("number", {"operation": "increment", "value": 1, "attribute": "x"}, "rules[0].value"),
        ("number", {"operation": "set"}, "rules[0].value"),
        ("string", {"operation": "set", "value": 3}, "rules[0].value"),
        ("boolean", {"operation": "set_true", "value": True}, "rules[0].value"),
        ("badge", {"operation": "assign", "attribute": "x"}, "rules[0].attribute"),
        ("date", {"operation": "set"}, "rules[0].attribute"),
        ("date", {"operation": "set", "attribute": "d", "value": "x"}, "rules[0].value"),
        ("set", {"operation": "add", "value": [1]}, "rules[0].value"),
        ("tally", {"operation": "increment"}, "rules[0].attribute"),
        ("tally", {"operation": "increment", "attribute": "a.", "value": 1}, "rules[0].attribute"),
        (
            "number",
            {"operation": "increment", "when": [[{"attribute": "x", "operator": "eq"}]]},
            "rules[0].when[0][0].operator",
        ),
        ("number", {"operation": "increment", "extra": 1}, "rules[0].extra"),
    ],
    ids=[
        "unknown-operation",
        "number-value-text",
        "value-and-attribute",
        "set-needs-source",
        "string-value-number",
        "boolean-takes-nothing",
        "badge-takes-nothing",
        "date-set-needs-attribute",
        "date-set-no-value",
        "set-values-strings",
        "tally-needs-key",
        "bad-path",
        "bad-when",
        "unknown-key",
    ],
)
def test_invalid_rules_name_the_field(type_: str, rule: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_rules([rule], type_)
    assert caught.value.details[0]["field"] == field
