"""An action's mappings (SPEC §4): where each parameter's value comes from, per event.

A mapping is ``{"parameter", one of "attribute" | "value" | "template", "key"?,
"transforms"?}``. Resolving one event:

1. each mapping takes its value: ``attribute`` the value at a dotted path (absent or null:
   the mapping is skipped), ``value`` a constant, ``template`` the rendered text;
2. its transforms apply in order;
3. the value is converted to the parameter's type: text for string/text/url (numbers as
   written, lists and objects as JSON); numbers, integers, booleans, lists and objects are
   parsed from text (``"42"``, ``"yes"``, ``"[1, 2]"``); empty text means no value for
   those types. An ``enum`` parameter must get one of its values;
4. a ``map`` parameter collects its mappings into an object by ``key``;
5. a parameter still without a value gets its ``Field.default``;
6. a required parameter that is still missing, null or ``""`` is a MappingError.

Templates compile (and constants resolve, transforms included) once, in
:func:`compile_mappings`; :meth:`CompiledMappings.resolve` only evaluates.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from sluice.connectors.definition import ActionType, Field
from sluice.engine._problems import Problems, choices
from sluice.engine.paths import MISSING, compile_path, path_problem
from sluice.engine.templates import CompiledTemplate, TemplateEngine, TemplateError, default_engine
from sluice.engine.transforms import (
    compile_transforms,
    kind_of,
    parse_number,
    to_string,
    truth,
    validate_transforms,
)
from sluice.errors import MappingError, ValidationFailed

SOURCES = ("attribute", "value", "template")
_KEYS = ("parameter", "key", *SOURCES, "transforms")

Convert = Callable[[Any], Any]


# ---------------------------------------------------------------- types


def _to_text(value: Any) -> Any:
    return value if isinstance(value, str) else to_string(value)


def _blank(value: Any) -> bool:
    return isinstance(value, str) and not value.strip()


def _to_number(value: Any) -> Any:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return value
    if _blank(value):
        return None
    if isinstance(value, str):
        number = parse_number(value)
        if number is not None:
            return number
    raise ValueError(f"expected a number, got {kind_of(value)}")


def _to_integer(value: Any) -> Any:
    number = _to_number(value)
    if number is None or isinstance(number, int):
        return number
    if number.is_integer():
        return int(number)
    raise ValueError("expected a whole number, got a fraction")


def _to_boolean(value: Any) -> Any:
    if _blank(value):
        return None
    result = truth(value)
    if result is None:
        raise ValueError(f"expected a boolean (true/false, yes/no, 1/0), got {kind_of(value)}")
    return result


def _from_json(kind: type, name: str) -> Convert:
    def convert(value: Any) -> Any:
        if isinstance(value, kind):
            return value
        if _blank(value):
            return None
        if isinstance(value, str):
            try:
                parsed = orjson.loads(value)
            except orjson.JSONDecodeError:
                raise ValueError(f"expected {name} as JSON, got text that is not JSON") from None
            if isinstance(parsed, kind):
                return parsed
            value = parsed
        raise ValueError(f"expected {name}, got {kind_of(value)}")

    return convert


_CONVERTERS: dict[str, Convert] = {
    "string": _to_text,
    "text": _to_text,
    "url": _to_text,
    "number": _to_number,
    "integer": _to_integer,
    "boolean": _to_boolean,
    "list": _from_json(list, "a list"),
    "object": _from_json(dict, "an object"),
}


def _converter(field: Field) -> Convert | None:
    """Type conversion and enum check for one parameter; None for ``map`` entries."""
    convert = _CONVERTERS.get(field.type)
    if convert is None:
        return None
    if not field.enum:
        return convert
    allowed = frozenset(field.enum)
    listed = ", ".join(field.enum)
    to_type = convert

    def convert_enum(value: Any) -> Any:
        value = to_type(value)
        if value is not None and value not in allowed:
            raise ValueError(f"expected one of {listed}")
        return value

    return convert_enum


def _finisher(field: Field, transforms: list[str]) -> Convert | None:
    """Transforms then conversion, as one function (None when there is nothing to do)."""
    chain = compile_transforms(transforms)
    convert = _converter(field)
    if chain is None:
        return convert
    if convert is None:
        return chain
    to_type = convert

    def finish(value: Any) -> Any:
        value = chain(value)
        return None if value is None else to_type(value)

    return finish


# ---------------------------------------------------------------- validation


def _check_source(
    item: dict[str, Any],
    source: str,
    at: str,
    field: Field | None,
    transforms: list[str],
    engine: TemplateEngine | None,
    problems: Problems,
) -> CompiledTemplate | None:
    """Check a mapping's one source; a template comes back compiled.

    ``field`` is None when the parameter is unknown or the mapping already has a
    problem: a constant is then not converted, which would only add noise.
    """
    if source == "attribute":
        problem = path_problem(item["attribute"])
        if problem is not None:
            problems.add(f"{at}.attribute", problem)
        return None
    if source == "template":
        text = item["template"]
        if not isinstance(text, str):
            problems.add(f"{at}.template", "must be text")
            return None
        try:
            return (engine or default_engine()).compile(text)
        except TemplateError as exc:
            problems.add(f"{at}.template", str(exc))
            return None
    if item["value"] is None:
        problems.add(f"{at}.value", "must not be null (remove the mapping instead)")
    elif field is not None:
        # A constant is checked now, transforms and type included: it never changes.
        try:
            finish = _finisher(field, transforms)
            if finish is not None:
                finish(item["value"])
        except ValueError as exc:
            problems.add(f"{at}.value", str(exc))
    return None


def _check(
    action_type: ActionType, raw: Any, engine: TemplateEngine | None
) -> tuple[list[dict[str, Any]], dict[int, CompiledTemplate]]:
    """Normalised mappings and their compiled templates (by index), or ValidationFailed.

    Any problem raises, so the indexes of the result are those of ``raw``.
    """
    problems = Problems()
    if not isinstance(raw, list):
        problems.add("mappings", "must be a list of mappings")
        problems.raise_if_any()
    parameter_names = [p.name for p in action_type.parameters]
    mapped: dict[str, int] = {}
    keyed: dict[tuple[str, str], int] = {}
    normalised: list[dict[str, Any]] = []
    templates: dict[int, CompiledTemplate] = {}

    for index, item in enumerate(raw):
        at = f"mappings[{index}]"
        if not isinstance(item, dict):
            problems.add(
                at, "must be an object with parameter and one of attribute, value, template"
            )
            continue
        before = len(problems.details)
        for key in item:
            if key not in _KEYS:
                problems.add(f"{at}.{key}", f"unknown key; valid keys: {', '.join(_KEYS)}")

        name = item.get("parameter")
        field: Field | None = None
        if name is None:
            problems.add(f"{at}.parameter", "is required")
        elif not isinstance(name, str) or action_type.parameter(name) is None:
            problems.add(
                f"{at}.parameter",
                choices("parameter", name, parameter_names) + f" (action type {action_type.id!r})",
            )
        else:
            field = action_type.parameter(name)

        transforms: list[str] = []
        try:
            transforms = validate_transforms(item.get("transforms"), f"{at}.transforms")
        except ValidationFailed as exc:
            problems.absorb(exc)

        sources = [source for source in SOURCES if source in item]
        if not sources:
            problems.add(at, "needs exactly one of attribute, value or template")
        elif len(sources) > 1:
            problems.add(
                f"{at}.{sources[1]}",
                f"give only one of attribute, value or template (found {' and '.join(sources)})",
            )
        else:
            clean = len(problems.details) == before
            template = _check_source(
                item, sources[0], at, field if clean else None, transforms, engine, problems
            )
            if template is not None:
                templates[index] = template

        key = item.get("key")
        if field is not None and field.type == "map":
            if not isinstance(key, str) or not key:
                problems.add(f"{at}.key", f"is required: {field.name!r} is a map parameter")
            elif (field.name, key) in keyed:
                first = keyed[(field.name, key)]
                problems.add(f"{at}.key", f"key {key!r} is already mapped by mappings[{first}]")
            else:
                keyed[(field.name, key)] = index
        elif field is not None:
            if "key" in item:
                problems.add(
                    f"{at}.key", f"only map parameters take a key; {field.name!r} is {field.type}"
                )
            if field.name in mapped:
                problems.add(
                    f"{at}.parameter",
                    f"{field.name!r} is already mapped by mappings[{mapped[field.name]}]",
                )
            else:
                mapped[field.name] = index

        if len(problems.details) == before and field is not None:
            mapping: dict[str, Any] = {"parameter": field.name}
            if field.type == "map":
                mapping["key"] = key
            mapping[sources[0]] = copy.deepcopy(item[sources[0]])
            if transforms:
                mapping["transforms"] = transforms
            normalised.append(mapping)

    problems.raise_if_any()
    return normalised, templates


def validate_mappings(
    action_type: ActionType, raw: Any, engine: TemplateEngine | None = None
) -> list[dict[str, Any]]:
    """A normalised copy of ``raw``; ValidationFailed naming ``mappings[i].<field>``."""
    return _check(action_type, raw, engine)[0]


def compute_status(action_type: ActionType, mappings: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"state", "groups", "missing"}`` of SPEC §4 for the action's mappings.

    A required parameter is satisfied by a mapping or by a default. ``groups`` holds only
    groups with a required parameter ("Required" for those without a group).
    """
    mapped = {m.get("parameter") for m in mappings if isinstance(m, Mapping)}
    groups: dict[str, str] = {}
    missing: list[str] = []
    for param in action_type.parameters:
        if not param.required:
            continue
        group = param.group or "Required"
        if param.name in mapped or param.default is not None:
            groups.setdefault(group, "COMPLETED")
        else:
            missing.append(param.name)
            groups[group] = "INCOMPLETE"
    return {
        "state": "INCOMPLETE" if missing else "COMPLETED",
        "groups": groups,
        "missing": missing,
    }


# ---------------------------------------------------------------- resolution


@dataclass(frozen=True, slots=True)
class _Step:
    parameter: str
    key: str | None  # the entry of a map parameter
    get: Callable[[Mapping[str, Any]], Any]  # MISSING when there is nothing
    finish: Convert | None
    origin: str  # "attribute 'customer.phone'", for messages


def _constant(value: Any) -> Callable[[Mapping[str, Any]], Any]:
    if isinstance(value, (list, dict)):
        # A connector's build may change what it gets: every event gets its own copy.
        return lambda _data: copy.deepcopy(value)
    return lambda _data: value


def _absent_message(origins: list[str]) -> str:
    if not origins:
        return "required parameter is not mapped"
    return f"required parameter has no value ({', '.join(origins)} gave none)"


class CompiledMappings:
    """An action's mappings, ready to resolve events into parameters."""

    __slots__ = ("_defaults", "_required", "_steps", "mappings")

    def __init__(
        self,
        mappings: list[dict[str, Any]],
        steps: tuple[_Step, ...],
        defaults: tuple[tuple[str, Any], ...],
        required: tuple[tuple[str, str], ...],
    ) -> None:
        self.mappings = mappings
        self._steps = steps
        self._defaults = defaults
        self._required = required

    def resolve(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The parameters for one event (or visitor context); MappingError when one fails."""
        params: dict[str, Any] = {}
        for step in self._steps:
            try:
                value = step.get(data)
                if value is MISSING or value is None:
                    continue
                if step.finish is not None:
                    value = step.finish(value)
                    if value is None:
                        continue
            except ValueError as exc:  # TemplateError included
                raise MappingError(step.parameter, f"{step.origin}: {exc}") from exc
            if step.key is None:
                params[step.parameter] = value
            else:
                entries = params.get(step.parameter)
                if entries is None:
                    params[step.parameter] = entries = {}
                entries[step.key] = value
        for name, default in self._defaults:
            if name not in params:
                params[name] = (
                    copy.deepcopy(default) if isinstance(default, (list, dict)) else default
                )
        for name, message in self._required:
            value = params.get(name)
            if value is None or value == "" or value == {}:
                raise MappingError(name, message)
        return params


def compile_mappings(
    action_type: ActionType,
    mappings: Any,
    engine: TemplateEngine | None = None,
) -> CompiledMappings:
    """Validate and compile; ValidationFailed if the mappings do not fit the action type,
    MappingError if a constant cannot be converted to its parameter's type."""
    normalised, templates = _check(action_type, mappings, engine)
    steps: list[_Step] = []
    origins: dict[str, list[str]] = {}
    for index, mapping in enumerate(normalised):
        name = mapping["parameter"]
        field = action_type.parameter(name)
        assert field is not None  # _check guarantees it
        finish = _finisher(field, mapping.get("transforms", []))
        key = mapping.get("key")
        if "attribute" in mapping:
            origin = f"attribute {mapping['attribute']!r}"
            get: Callable[[Mapping[str, Any]], Any] = compile_path(mapping["attribute"])
        elif "template" in mapping:
            origin = "template"
            get = templates[index].render
        else:
            origin = "constant value"
            value = mapping["value"]
            if finish is not None:
                try:
                    value = finish(value)
                except ValueError as exc:
                    raise MappingError(name, f"{origin}: {exc}") from exc
                finish = None
            get = _constant(MISSING if value is None else value)
        if key is not None:
            origin = f"{origin} for key {key!r}"
        steps.append(_Step(name, key, get, finish, origin))
        origins.setdefault(name, []).append(origin)

    params = action_type.parameters
    defaults = tuple((p.name, p.default) for p in params if p.default is not None)
    required = tuple(
        (p.name, _absent_message(origins.get(p.name, []))) for p in params if p.required
    )
    return CompiledMappings(normalised, tuple(steps), defaults, required)
