"""What makes a connector type usable: the checks the registry runs before accepting one."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any, get_args

from sluice.connectors.definition import (
    CONSENT_CATEGORIES,
    ActionType,
    Batching,
    ConnectorType,
    DataType,
    Field,
    FieldType,
)
from sluice.connectors.helpers import is_http_url

SNAKE_CASE = re.compile(r"^[a-z][a-z0-9]*(?:_[a-z0-9]+)*$")
FIELD_TYPES: tuple[str, ...] = get_args(FieldType)
DATA_TYPES: tuple[str, ...] = get_args(DataType)
# Secrets are stored encrypted as text; enums are chosen from a list of words.
TEXT_TYPES = ("string", "text")

_DEFAULT_TYPES: dict[str, tuple[type, ...]] = {
    "string": (str,),
    "text": (str,),
    "url": (str,),
    "number": (int, float),
    "integer": (int,),
    "boolean": (bool,),
    "map": (dict,),
    "list": (list, tuple),
    "object": (dict,),
}


def _has_text(value: object) -> bool:
    return isinstance(value, str) and bool(value.strip())


def _duplicates(values: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    repeated: list[str] = []
    for value in values:
        if value in seen and value not in repeated:
            repeated.append(value)
        seen.add(value)
    return repeated


def _default_fits(field: Field) -> bool:
    value = field.default
    if value is None:
        return True
    if isinstance(value, bool) and field.type != "boolean":
        return False
    return isinstance(value, _DEFAULT_TYPES.get(field.type, (object,)))


def _check_field(field: Any, where: str, *, parameter: bool) -> list[str]:
    if not isinstance(field, Field):
        return [f"{where}: expected a Field, got {type(field).__name__}"]
    where = f"{where} {field.name!r}"
    problems: list[str] = []
    if not isinstance(field.name, str) or not SNAKE_CASE.match(field.name):
        problems.append(f"{where}: the name must be snake_case")
    if not _has_text(field.title):
        problems.append(f"{where}: the title is empty")
    if not _has_text(field.help):
        problems.append(f"{where}: the help text is empty")
    if field.type not in FIELD_TYPES:
        problems.append(f"{where}: unknown type {field.type!r} (one of {', '.join(FIELD_TYPES)})")
    if field.group is not None and not _has_text(field.group):
        problems.append(f"{where}: the group must be None or a name")
    if field.enum is not None:
        if field.type != "string":
            problems.append(f"{where}: an enum field must be of type string")
        if not field.enum or not all(_has_text(choice) for choice in field.enum):
            problems.append(f"{where}: the enum must list non-empty choices")
        elif _duplicates(field.enum):
            problems.append(f"{where}: the enum repeats {', '.join(_duplicates(field.enum))}")
        if field.default is not None and field.default not in field.enum:
            problems.append(f"{where}: the default {field.default!r} is not one of the enum")
    if not _default_fits(field):
        problems.append(f"{where}: the default {field.default!r} is not of type {field.type}")
    if field.secret:
        if parameter:
            problems.append(f"{where}: parameters cannot be secret; use a configuration field")
        if field.type not in TEXT_TYPES:
            problems.append(f"{where}: a secret field must be of type string or text")
        if field.default is not None:
            problems.append(f"{where}: a secret field cannot have a default")
    return problems


def _check_batching(batching: Any, where: str) -> list[str]:
    if batching is None:
        return []
    if not isinstance(batching, Batching):
        return [f"{where}: batching must be a Batching or None"]
    problems = []
    for name in ("max_count", "max_bytes"):
        value = getattr(batching, name)
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            problems.append(f"{where}: batching {name} must be a positive integer")
    age = batching.max_age_seconds
    if isinstance(age, bool) or not isinstance(age, int | float) or age <= 0:
        problems.append(f"{where}: batching max_age_seconds must be positive")
    return problems


def _check_action(action: Any, where: str) -> list[str]:
    if not isinstance(action, ActionType):
        return [f"{where}: expected an ActionType, got {type(action).__name__}"]
    where = f"{where} {action.id!r}"
    problems: list[str] = []
    if not isinstance(action.id, str) or not SNAKE_CASE.match(action.id):
        problems.append(f"{where}: the id must be snake_case")
    if not _has_text(action.name):
        problems.append(f"{where}: the name is empty")
    if not _has_text(action.description):
        problems.append(f"{where}: the description is empty")
    if not callable(action.build):
        problems.append(f"{where}: build is not callable")
    if not callable(action.classify):
        problems.append(f"{where}: classify is not callable")
    for param in action.parameters:
        problems.extend(_check_field(param, f"{where}: parameter", parameter=True))
    names = [p.name for p in action.parameters if isinstance(p, Field)]
    problems.extend(f"{where}: parameter {name!r} is defined twice" for name in _duplicates(names))
    if action.user_consent:
        if action.consent_categories:
            problems.append(
                f"{where}: the user chooses its consent categories (user_consent); "
                "leave consent_categories empty"
            )
    else:
        unknown = [c for c in action.consent_categories if c not in CONSENT_CATEGORIES]
        if unknown:
            problems.append(f"{where}: unknown consent categories {unknown}")
        problems.extend(
            f"{where}: consent category {c!r} is listed twice"
            for c in _duplicates(action.consent_categories)
        )
    if not action.data_types or any(d not in DATA_TYPES for d in action.data_types):
        problems.append(f"{where}: data_types must be a non-empty subset of {DATA_TYPES}")
    problems.extend(_check_batching(action.batching, where))
    return problems


def validate_connector_type(ct: object) -> list[str]:
    """Every problem that makes ``ct`` unusable, as readable sentences; empty when it is fine."""
    if not isinstance(ct, ConnectorType):
        return [f"expected a ConnectorType, got {type(ct).__name__}"]
    where = f"connector type {ct.id!r}"
    problems: list[str] = []
    if not isinstance(ct.id, str) or not SNAKE_CASE.match(ct.id):
        problems.append(f"{where}: the id must be snake_case")
    if not _has_text(ct.name):
        problems.append(f"{where}: the name is empty")
    if not _has_text(ct.description):
        problems.append(f"{where}: the description is empty")
    for field in ct.configuration:
        problems.extend(_check_field(field, f"{where}: configuration field", parameter=False))
    if all(isinstance(f, Field) for f in ct.configuration):
        names = [f.name for f in ct.all_configuration()]
        problems.extend(
            f"{where}: configuration field {name!r} is defined twice" for name in _duplicates(names)
        )
    if not ct.actions:
        problems.append(f"{where}: it has no action types")
    for action in ct.actions:
        problems.extend(_check_action(action, f"{where}: action"))
    ids = [a.id for a in ct.actions if isinstance(a, ActionType)]
    problems.extend(f"{where}: action {i!r} is defined twice" for i in _duplicates(ids))
    if not all(_has_text(line) for line in ct.what_you_need):
        problems.append(f"{where}: what_you_need holds an empty line")
    for resource in ct.resources:
        if not _has_text(resource.title):
            problems.append(f"{where}: a resource has no title")
        internal_ok = resource.internal and str(resource.url).startswith("/")
        if not (is_http_url(resource.url) or internal_ok):
            problems.append(
                f"{where}: resource {resource.title!r} needs an http(s) URL "
                "(or a path starting with / when internal)"
            )
    if ct.icon_svg and "<svg" not in ct.icon_svg:
        problems.append(f"{where}: icon_svg is not an SVG document")
    if ct.base_url is not None and not is_http_url(ct.base_url):
        problems.append(f"{where}: base_url must be an absolute http(s) URL")
    return problems
