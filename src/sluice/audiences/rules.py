"""Visitor attributes (SPEC §8): their types, rules and operations; validated, compiled.

A rule is ``{"when": [[c, ...]], "operation", "value"?, "attribute"?}``: when the event
matches ``when`` (event-feed conditions over the event; ``[]`` or absent matches every
event), the operation changes the attribute. Operations by type:

=========  ====================================================================
number     ``increment``, ``decrement`` (by ``value``, or by the number in the event's
           ``attribute``; by 1 when neither is given), ``set`` (``value`` or ``attribute``)
string     ``set``, ``set_first`` (only while unset): ``value`` or ``attribute``
boolean    ``set_true``, ``set_false``
badge      ``assign``, ``remove`` (the badge is the attribute's name)
date       ``set_now`` (the event's time), ``set`` (from ``attribute``: ISO 8601 text or
           epoch seconds/milliseconds)
set        ``add``, ``remove``: a string or list of ``value``, or the event's ``attribute``
tally      ``increment``: the key is the event's ``attribute`` (each element of a list),
           by ``value`` (default 1)
=========  ====================================================================

An event lacking what an operation needs (no number where one is needed) leaves the
attribute as it was. Operations never mutate a value in place (see ``model``).
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeGuard

from sluice.audiences.model import VisitorProfile
from sluice.engine.conditions import Predicate, compile_conditions, validate_conditions
from sluice.engine.paths import MISSING, compile_path, path_problem
from sluice.engine.transforms import parse_number
from sluice.errors import ValidationFailed
from sluice.timeutil import iso, parse_iso

SCOPES = ("visitor", "visit")
OPERATIONS: dict[str, tuple[str, ...]] = {
    "number": ("increment", "decrement", "set"),
    "string": ("set", "set_first"),
    "boolean": ("set_true", "set_false"),
    "badge": ("assign", "remove"),
    "date": ("set_now", "set"),
    "set": ("add", "remove"),
    "tally": ("increment",),
}
TYPES = tuple(OPERATIONS)
# Names the mapping context of a visitor-sourced action uses itself (SPEC §8).
RESERVED = ("visitor_id", "badges", "audiences", "current_visit", "event")
NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_ -]{0,99}$")
MAX_RULES = 50
_RULE_KEYS = ("when", "operation", "value", "attribute")

# What each operation takes: "none", "amount" (optional number or attribute), "source"
# (exactly one of value/attribute), "attribute" (attribute required, value not allowed),
# "tally" (attribute required, optional number value).
_NEEDS: dict[tuple[str, str], str] = {
    ("number", "increment"): "amount",
    ("number", "decrement"): "amount",
    ("number", "set"): "source",
    ("string", "set"): "source",
    ("string", "set_first"): "source",
    ("date", "set"): "attribute",
    ("set", "add"): "source",
    ("set", "remove"): "source",
    ("tally", "increment"): "tally",
}

# (the attribute's values of its scope, the profile, the event, the event's time)
Apply = Callable[[dict[str, Any], VisitorProfile, Mapping[str, Any], float], None]


# ---------------------------------------------------------------- validation


def check_name(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.field("name", "is required")
    name = value.strip()
    if not NAME_RE.match(name):
        raise ValidationFailed.field(
            "name", "must be 1-100 letters, digits, spaces, '_' or '-' (no dots)"
        )
    if name in RESERVED:
        raise ValidationFailed.field("name", f"{name!r} is reserved ({', '.join(RESERVED)})")
    return name


def check_kind(scope: Any, type_: Any) -> tuple[str, str]:
    if scope not in SCOPES:
        raise ValidationFailed.field("scope", f"must be one of {', '.join(SCOPES)}")
    if type_ not in TYPES:
        raise ValidationFailed.field("type", f"must be one of {', '.join(TYPES)}")
    if type_ == "badge" and scope != "visitor":
        raise ValidationFailed.field("scope", "badges are visitor-scoped: use scope visitor")
    return str(scope), str(type_)


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _check_rule(raw: Any, type_: str, field: str) -> dict[str, Any]:
    if not isinstance(raw, dict):
        raise ValidationFailed.field(field, "must be an object with when and operation")
    for key in raw:
        if key not in _RULE_KEYS:
            raise ValidationFailed.field(f"{field}.{key}", f"unknown key; use {_RULE_KEYS}")
    operation = raw.get("operation")
    valid = OPERATIONS[type_]
    if operation not in valid:
        raise ValidationFailed.field(
            f"{field}.operation", f"must be one of {', '.join(valid)} for a {type_} attribute"
        )
    rule: dict[str, Any] = {
        "when": validate_conditions(raw.get("when", []), field=f"{field}.when"),
        "operation": operation,
    }
    needs = _NEEDS.get((type_, operation), "none")
    has_value, has_attribute = "value" in raw, "attribute" in raw
    if has_attribute:
        problem = path_problem(raw["attribute"])
        if problem is not None:
            raise ValidationFailed.field(f"{field}.attribute", problem)
        if needs == "none":
            raise ValidationFailed.field(f"{field}.attribute", f"is not used by {operation}")
        rule["attribute"] = raw["attribute"]
    elif needs in ("attribute", "tally"):
        raise ValidationFailed.field(f"{field}.attribute", f"is required for {operation}")
    if has_value:
        value = raw["value"]
        if needs in ("none", "attribute"):
            raise ValidationFailed.field(f"{field}.value", f"is not used by {operation}")
        if needs == "source" and has_attribute:
            raise ValidationFailed.field(f"{field}.value", "give either value or attribute")
        if needs == "amount" and has_attribute:
            raise ValidationFailed.field(f"{field}.value", "give either value or attribute")
        if (type_ in ("number", "tally")) and not _is_number(value):
            raise ValidationFailed.field(f"{field}.value", "must be a number")
        if type_ == "string" and not isinstance(value, str):
            raise ValidationFailed.field(f"{field}.value", "must be a string")
        if type_ == "set" and not (
            isinstance(value, str)
            or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
        ):
            raise ValidationFailed.field(f"{field}.value", "must be a string or list of strings")
        rule["value"] = value
    elif needs == "source" and not has_attribute:
        raise ValidationFailed.field(f"{field}.value", f"{operation} needs a value or attribute")
    return rule


def check_rules(raw: Any, type_: str) -> list[dict[str, Any]]:
    if not isinstance(raw, list):
        raise ValidationFailed.field("rules", "must be a list of rules")
    if len(raw) > MAX_RULES:
        raise ValidationFailed.field("rules", f"at most {MAX_RULES} rules")
    return [_check_rule(rule, type_, f"rules[{i}]") for i, rule in enumerate(raw)]


# ---------------------------------------------------------------- reading the event


def _number(value: Any) -> int | float | None:
    if _is_number(value):
        number: int | float = value
        return number
    if isinstance(value, str):
        return parse_number(value)
    return None


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if _is_number(value):
        return str(value)
    return None


def _texts(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [t for t in map(_text, items) if t is not None]


def _date(value: Any) -> str | None:
    if isinstance(value, str):
        try:
            return iso(parse_iso(value))
        except ValueError:
            number = parse_number(value)
            return _date(number) if number is not None else None
    if _is_number(value):
        seconds = float(value) / 1000 if abs(value) > 1e11 else float(value)
        return iso(seconds)
    return None


def _reader(rule: dict[str, Any]) -> Callable[[Mapping[str, Any]], Any]:
    """The rule's input: its constant ``value``, or the event's ``attribute``."""
    if "attribute" in rule:
        get = compile_path(rule["attribute"])
        return lambda event: None if (found := get(event)) is MISSING else found
    value = rule.get("value")
    return lambda _event: value


# ---------------------------------------------------------------- operations


def _operation(name: str, type_: str, rule: dict[str, Any]) -> Apply:
    operation = rule["operation"]
    read = _reader(rule)
    if type_ == "number":
        if operation == "set":

            def set_number(values: dict[str, Any], _p: VisitorProfile, e: Any, _t: float) -> None:
                number = _number(read(e))
                if number is not None:
                    values[name] = number

            return set_number
        sign = -1 if operation == "decrement" else 1
        if "value" not in rule and "attribute" not in rule:
            read = lambda _event: 1  # noqa: E731

        def add(values: dict[str, Any], _p: VisitorProfile, e: Any, _t: float) -> None:
            amount = _number(read(e))
            if amount is not None:
                current = values.get(name)
                base: int | float = current if _is_number(current) else 0
                values[name] = base + sign * amount

        return add
    if type_ == "string":
        first = operation == "set_first"

        def set_text(values: dict[str, Any], _p: VisitorProfile, e: Any, _t: float) -> None:
            if first and values.get(name) is not None:
                return
            text = _text(read(e))
            if text is not None:
                values[name] = text

        return set_text
    if type_ == "boolean":
        flag = operation == "set_true"

        def set_flag(values: dict[str, Any], _p: VisitorProfile, _e: Any, _t: float) -> None:
            values[name] = flag

        return set_flag
    if type_ == "badge":
        assign = operation == "assign"

        def badge(_v: dict[str, Any], profile: VisitorProfile, _e: Any, _t: float) -> None:
            if assign and name not in profile.badges:
                profile.badges = sorted([*profile.badges, name])
            elif not assign and name in profile.badges:
                profile.badges = [b for b in profile.badges if b != name]

        return badge
    if type_ == "date":
        now = operation == "set_now"

        def set_date(values: dict[str, Any], _p: VisitorProfile, e: Any, at: float) -> None:
            text = iso(at) if now else _date(read(e))
            if text is not None:
                values[name] = text

        return set_date
    if type_ == "set":
        adding = operation == "add"

        def change_set(values: dict[str, Any], _p: VisitorProfile, e: Any, _t: float) -> None:
            items = _texts(read(e))
            current = values.get(name)
            members: list[str] = current if isinstance(current, list) else []
            changed = list(members)
            for item in items:
                index = bisect.bisect_left(changed, item)
                present = index < len(changed) and changed[index] == item
                if adding and not present:
                    changed.insert(index, item)
                elif not adding and present:
                    del changed[index]
            if changed != members or not isinstance(current, list):
                values[name] = changed

        return change_set
    # tally: increment
    amount = rule.get("value", 1)
    key_of = _reader({"attribute": rule["attribute"]})

    def count(values: dict[str, Any], _p: VisitorProfile, e: Any, _t: float) -> None:
        keys = _texts(key_of(e))
        if not keys:
            return
        current = values.get(name)
        tally = dict(current) if isinstance(current, dict) else {}
        for key in keys:
            before = tally.get(key)
            tally[key] = (before if _is_number(before) else 0) + amount
        values[name] = tally

    return count


# ---------------------------------------------------------------- compiled


@dataclass(frozen=True, slots=True)
class CompiledAttribute:
    name: str
    scope: str
    type: str
    rules: tuple[tuple[Predicate | None, Apply], ...]  # None: every event

    def apply(self, profile: VisitorProfile, event: Mapping[str, Any], at: float) -> None:
        if self.scope == "visit":
            if profile.visit is None:
                return
            values = profile.visit.attributes
        else:
            values = profile.attributes
        for when, operation in self.rules:
            if when is None or when(event):
                operation(values, profile, event, at)


def compile_attribute(definition: Mapping[str, Any]) -> CompiledAttribute:
    name, type_ = str(definition["name"]), str(definition["type"])
    rules = tuple(
        (
            compile_conditions(rule["when"]) if rule.get("when") else None,
            _operation(name, type_, rule),
        )
        for rule in definition.get("rules") or []
    )
    return CompiledAttribute(name, str(definition["scope"]), type_, rules)


Step = tuple[bool, Predicate | None, Apply]  # (visit scope, when, operation)


def steps_of(attributes: list[CompiledAttribute]) -> list[Step]:
    """Every rule of every attribute, in order, flattened for the per-event loop."""
    return [(a.scope == "visit", w, op) for a in attributes for w, op in a.rules]


def enrich(steps: list[Step], profile: VisitorProfile, event: Mapping[str, Any], at: float) -> None:
    """Apply the rules to a profile that has a current visit."""
    visitor_values = profile.attributes
    visit = profile.visit
    assert visit is not None
    visit_values = visit.attributes
    for visit_scope, when, operation in steps:
        if when is None or when(event):
            operation(visit_values if visit_scope else visitor_values, profile, event, at)
