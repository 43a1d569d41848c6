"""Event-feed conditions (SPEC §8): ``[[c, c], [c]]``, OR of groups, AND within a group.

An empty list matches every event. A condition is ``{"attribute", "operator", "value",
"ignore_case"?}``; ``attribute`` is a dotted path (``items.0.sku``).

Comparison semantics, chosen to match what users of Tealium and Segment expect:

- **Missing**: an absent attribute and a JSON ``null`` are both *missing*. A missing
  attribute fails every operator except ``not_exists``, ``not_equals`` and
  ``not_contains``, which it passes. ``exists`` is true for any other value, ``""``
  included.
- **equals / not_equals**: numbers compare numerically when either side is a real number
  and the other a number or numeric text (``10`` equals ``"10.0"``); otherwise both
  compare as text, booleans as ``true``/``false`` (``true`` equals ``"true"``). Two texts
  compare as text (``"007"`` is not ``"7"``). A list or object equals no value.
- **contains / not_contains**: in text, a substring; in a list, membership by the
  ``equals`` rules (``["a", "b"]`` contains ``"a"``); in an object, a key. A number or
  boolean is searched as its text.
- **starts_with / ends_with / regex**: on the text of a scalar (a list or object never
  matches); ``regex`` searches anywhere, anchor it with ``^...$``.
- **in**: the value is a list; true when the attribute ``equals`` any element, or, for a
  list attribute, when any of its elements does.
- **gt / gte / lt / lte**: numeric only; numeric text is converted, anything else (text,
  booleans, lists) is false. The condition's value must be a number or numeric text.
- **is_true / is_false**: ``true``/``false``, numbers (0 is false, any other is true) and
  the words true/false, yes/no, on/off, y/n, t/f, 1/0 in any case. Other values are
  neither true nor false.
- **ignore_case**: text comparisons ignore case (Unicode case folding).

Conditions are validated once (:func:`validate_conditions`) and compiled into closures
(:func:`compile_conditions`) that do no parsing per event.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from sluice.engine._problems import Problems, choices
from sluice.engine.paths import MISSING, compile_path, path_problem
from sluice.engine.transforms import parse_number, truth

Condition = dict[str, Any]
Conditions = list[list[Condition]]
Predicate = Callable[[Mapping[str, Any]], bool]
_Match = Callable[[Any], bool]

OPERATORS: tuple[str, ...] = (
    "equals",
    "not_equals",
    "contains",
    "not_contains",
    "starts_with",
    "ends_with",
    "regex",
    "exists",
    "not_exists",
    "gt",
    "gte",
    "lt",
    "lte",
    "in",
    "is_true",
    "is_false",
)
# Names people type for an operator, suggested in the error (never accepted silently).
_ALIASES = {
    "=": "equals",
    "==": "equals",
    "eq": "equals",
    "is": "equals",
    "!=": "not_equals",
    "<>": "not_equals",
    "ne": "not_equals",
    ">": "gt",
    "greater": "gte",
    "greater_than": "gt",
    ">=": "gte",
    "<": "lt",
    "less": "lte",
    "less_than": "lt",
    "<=": "lte",
    "matches": "regex",
    "defined": "exists",
    "is_defined": "exists",
    "undefined": "not_exists",
    "one_of": "in",
}
_NO_VALUE = frozenset({"exists", "not_exists", "is_true", "is_false"})
_NUMERIC = frozenset({"gt", "gte", "lt", "lte"})
# These pass when the attribute is missing and otherwise negate their positive twin.
_NEGATED = {"not_equals": "equals", "not_contains": "contains"}
_KEYS = ("attribute", "operator", "value", "ignore_case")
MAX_REGEX_LENGTH = 1000


def _always(_data: Mapping[str, Any]) -> bool:
    return True


# ---------------------------------------------------------------- validation


def _scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float))  # bool is an int


def _check_value(
    operator: str, value: Any, ignore_case: bool, field: str, problems: Problems
) -> None:
    if operator == "in":
        if not isinstance(value, list):
            problems.add(field, "must be a list of values for operator 'in'")
            return
        if not value:
            problems.add(field, "must list at least one value for operator 'in'")
        for index, item in enumerate(value):
            if not _scalar(item):
                problems.add(f"{field}[{index}]", "must be a string, number or boolean")
        return
    if value is None:
        problems.add(field, f"is required for operator {operator!r}")
        return
    if not _scalar(value):
        problems.add(field, f"must be a string, number or boolean for operator {operator!r}")
        return
    if operator in _NUMERIC:
        if isinstance(value, bool) or (isinstance(value, str) and parse_number(value) is None):
            problems.add(field, f"must be a number for operator {operator!r}")
    elif operator == "regex":
        if not isinstance(value, str):
            problems.add(field, "must be a regular expression as text")
        elif len(value) > MAX_REGEX_LENGTH:
            problems.add(field, f"regular expression longer than {MAX_REGEX_LENGTH} characters")
        else:
            try:
                re.compile(value, re.IGNORECASE if ignore_case else 0)
            except re.error as exc:
                problems.add(field, f"invalid regular expression: {exc}")


def _check_condition(raw: Any, field: str, problems: Problems) -> Condition | None:
    if not isinstance(raw, dict):
        problems.add(field, "must be an object with attribute, operator and value")
        return None
    before = len(problems.details)
    for key in raw:
        if key not in _KEYS:
            problems.add(f"{field}.{key}", f"unknown key; valid keys: {', '.join(_KEYS)}")
    attribute = raw.get("attribute")
    problem = "is required" if attribute is None else path_problem(attribute)
    if problem is not None:
        problems.add(f"{field}.attribute", problem)
    operator = raw.get("operator")
    if operator is None:
        problems.add(f"{field}.operator", f"is required; valid operators: {', '.join(OPERATORS)}")
    elif operator not in OPERATORS:
        problems.add(f"{field}.operator", choices("operator", operator, OPERATORS, _ALIASES))
    ignore_case = raw.get("ignore_case", False)
    if not isinstance(ignore_case, bool):
        problems.add(f"{field}.ignore_case", "must be true or false")
        ignore_case = False
    if operator in OPERATORS and operator not in _NO_VALUE:
        _check_value(operator, raw.get("value"), ignore_case, f"{field}.value", problems)
    if len(problems.details) > before:
        return None
    condition: Condition = {"attribute": attribute, "operator": operator}
    if operator not in _NO_VALUE:  # a value given to exists & co. means nothing: dropped
        condition["value"] = raw["value"]
    condition["ignore_case"] = ignore_case
    return condition


def validate_conditions(raw: Any, field: str = "conditions") -> Conditions:
    """A normalised copy of ``raw``; ValidationFailed naming each bad spot, e.g.
    ``conditions[0][1].operator``."""
    problems = Problems()
    if not isinstance(raw, list):
        problems.add(field, "must be a list of condition groups, e.g. [[{...}, {...}], [{...}]]")
        problems.raise_if_any()
    groups: Conditions = []
    for group_index, group in enumerate(raw):
        group_field = f"{field}[{group_index}]"
        if not isinstance(group, list):
            problems.add(group_field, "must be a list of conditions (all of which must match)")
            continue
        if not group:
            problems.add(
                group_field,
                "is empty; a group needs at least one condition "
                "(an empty outer list matches every event)",
            )
        conditions = []
        for index, raw_condition in enumerate(group):
            condition = _check_condition(raw_condition, f"{group_field}[{index}]", problems)
            if condition is not None:
                conditions.append(condition)
        groups.append(conditions)
    problems.raise_if_any()
    return groups


# ---------------------------------------------------------------- matching
#
# Each operator is a factory: given the condition's value (already validated), it
# precomputes what it can (case-folded text, the number, the compiled regex) and returns
# a test of one present, non-null attribute value.


def _text(value: Any) -> str | None:
    """The text of a scalar; None for lists and objects."""
    if isinstance(value, str):
        return value
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (int, float)):
        return str(value)
    return None


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, str):
        return parse_number(value)
    return None


def _equals(value: Any, ignore_case: bool) -> _Match:
    expected_number = _number(value)
    value_is_number = expected_number is not None and not isinstance(value, str)
    expected = _text(value) or ""
    if ignore_case:
        expected = expected.casefold()

    def match(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            if value_is_number:
                number = parse_number(actual)
                return number is not None and number == expected_number
            text: str = actual.casefold() if ignore_case else actual
            return text == expected
        if kind is int or kind is float:
            found: float = actual
            return expected_number is not None and found == expected_number
        if kind is bool:
            return ("true" if actual else "false") == expected
        return False

    return match


def _contains(value: Any, ignore_case: bool) -> _Match:
    member = _equals(value, ignore_case)
    needle = _text(value) or ""
    if ignore_case:
        needle = needle.casefold()

    def match(actual: Any) -> bool:
        if isinstance(actual, str):
            return needle in (actual.casefold() if ignore_case else actual)
        if isinstance(actual, list):
            for item in actual:  # noqa: SIM110 - see _all_of
                if member(item):
                    return True
            return False
        if isinstance(actual, dict):
            if ignore_case:
                return any(isinstance(k, str) and k.casefold() == needle for k in actual)
            return needle in actual
        text = _text(actual)
        return text is not None and needle in (text.casefold() if ignore_case else text)

    return match


def _affix(value: Any, ignore_case: bool, *, start: bool) -> _Match:
    affix = _text(value) or ""
    if ignore_case:
        affix = affix.casefold()

    def match(actual: Any) -> bool:
        text = actual if isinstance(actual, str) else _text(actual)
        if text is None:
            return False
        if ignore_case:
            text = text.casefold()
        return text.startswith(affix) if start else text.endswith(affix)

    return match


def _regex(value: Any, ignore_case: bool) -> _Match:
    search = re.compile(str(value), re.IGNORECASE if ignore_case else 0).search

    def match(actual: Any) -> bool:
        text = actual if isinstance(actual, str) else _text(actual)
        return text is not None and search(text) is not None

    return match


def _in(values: list[Any], ignore_case: bool) -> _Match:
    def fold(text: str) -> str:
        return text.casefold() if ignore_case else text

    texts = frozenset(fold(t) for t in map(_text, values) if t is not None)
    # Sets of numbers compare numerically (hash(10) == hash(10.0)), so lookups are exact.
    numbers = frozenset(n for n in map(_number, values) if n is not None)
    real_numbers = frozenset(
        v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)
    )

    def scalar(actual: Any) -> bool:
        kind = type(actual)
        if kind is str:
            if fold(actual) in texts:
                return True
            if real_numbers:
                number = parse_number(actual)
                return number is not None and number in real_numbers
            return False
        if kind is int or kind is float:
            return actual in numbers
        if kind is bool:
            return ("true" if actual else "false") in texts
        return False

    def match(actual: Any) -> bool:
        if isinstance(actual, list):
            for item in actual:  # noqa: SIM110 - see _all_of
                if scalar(item):
                    return True
            return False
        return scalar(actual)

    return match


def _compare(operator: str, value: Any) -> _Match:
    limit = _number(value)
    if limit is None:  # validation prevents this; never match rather than crash
        return lambda _actual: False
    bound: float = limit

    if operator == "gt":

        def match(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and number > bound
    elif operator == "gte":

        def match(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and number >= bound
    elif operator == "lt":

        def match(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and number < bound
    else:

        def match(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and number <= bound

    return match


def _matcher(operator: str, value: Any, ignore_case: bool) -> _Match:
    if operator == "equals":
        return _equals(value, ignore_case)
    if operator == "contains":
        return _contains(value, ignore_case)
    if operator == "starts_with":
        return _affix(value, ignore_case, start=True)
    if operator == "ends_with":
        return _affix(value, ignore_case, start=False)
    if operator == "regex":
        return _regex(value, ignore_case)
    if operator == "in":
        return _in(value, ignore_case)
    if operator in _NUMERIC:
        return _compare(operator, value)
    if operator == "is_true":
        return lambda actual: truth(actual) is True
    if operator == "is_false":
        return lambda actual: truth(actual) is False
    raise ValueError(f"unknown operator {operator!r}")


def _compile_condition(condition: Condition) -> Predicate:
    operator: str = condition["operator"]
    path: str = condition["attribute"]
    get = compile_path(path)
    top_level = "." not in path

    if operator in ("exists", "not_exists"):
        wanted = operator == "exists"

        def exists(data: Mapping[str, Any]) -> bool:
            actual = get(data)
            return (actual is not MISSING and actual is not None) is wanted

        return exists

    negate = operator in _NEGATED
    match = _matcher(
        _NEGATED.get(operator, operator), condition.get("value"), condition["ignore_case"]
    )

    # A top-level key (the usual case) skips the getter call: one call less per condition.
    if top_level and not negate:

        def test_key(data: Mapping[str, Any]) -> bool:
            actual = data.get(path)
            return actual is not None and match(actual)

        return test_key
    if top_level:

        def test_key_negated(data: Mapping[str, Any]) -> bool:
            actual = data.get(path)
            return actual is None or not match(actual)

        return test_key_negated
    if not negate:

        def test_path(data: Mapping[str, Any]) -> bool:
            actual = get(data)
            return actual is not MISSING and actual is not None and match(actual)

        return test_path

    def test_path_negated(data: Mapping[str, Any]) -> bool:
        actual = get(data)
        return actual is MISSING or actual is None or not match(actual)

    return test_path_negated


def _all_of(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 1:
        return tests[0]
    if len(tests) == 2:
        first, second = tests
        return lambda data: first(data) and second(data)

    def all_of(data: Mapping[str, Any]) -> bool:
        # A plain loop: all() over a generator costs an extra frame per event.
        for test in tests:  # noqa: SIM110
            if not test(data):
                return False
        return True

    return all_of


def _any_of(tests: tuple[Predicate, ...]) -> Predicate:
    if len(tests) == 1:
        return tests[0]

    def any_of(data: Mapping[str, Any]) -> bool:
        for test in tests:  # noqa: SIM110 - see _all_of
            if test(data):
                return True
        return False

    return any_of


def compile_conditions(conditions: Any) -> Predicate:
    """A predicate over events; validates first (ValidationFailed for a bad feed)."""
    groups = validate_conditions(conditions)
    if not groups:
        return _always
    return _any_of(tuple(_all_of(tuple(_compile_condition(c) for c in group)) for group in groups))
