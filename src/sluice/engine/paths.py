"""Dotted paths into events and visitor contexts: ``customer.phone``, ``items.0.sku``.

Event keys never contain a dot (the collect API rejects them), so a dot always separates
segments. A segment of digits indexes a list (and is an ordinary key in an object).
Paths are split once by :func:`compile_path`; the getter it returns does no parsing.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any, Final

PathGetter = Callable[[Mapping[str, Any]], Any]

MAX_PATH_LENGTH = 512


class _Missing(enum.Enum):
    MISSING = "MISSING"

    def __repr__(self) -> str:
        return "MISSING"

    def __bool__(self) -> bool:
        return False


# An enum member: a singleton that survives pickling and that mypy can narrow on.
MISSING: Final = _Missing.MISSING


def path_problem(path: object) -> str | None:
    """What is wrong with ``path`` as an attribute path, or None when it is usable."""
    if not isinstance(path, str):
        return "must be a string"
    if not path:
        return "must not be empty"
    if len(path) > MAX_PATH_LENGTH:
        return f"is longer than {MAX_PATH_LENGTH} characters"
    if "" in path.split("."):
        return f"{path!r} has an empty segment (a leading, trailing or doubled dot)"
    return None


def _segments(path: str) -> tuple[tuple[str, int | None], ...]:
    problem = path_problem(path)
    if problem is not None:
        raise ValueError(f"invalid attribute path: {problem}")
    return tuple(
        (part, int(part) if part.isascii() and part.isdigit() else None) for part in path.split(".")
    )


def compile_path(path: str) -> PathGetter:
    """A getter for ``path``: the value there, or MISSING. Raises ValueError for a bad path."""
    segments = _segments(path)
    if len(segments) == 1:
        key = segments[0][0]

        def get_top(data: Mapping[str, Any]) -> Any:
            return data.get(key, MISSING)

        return get_top

    if len(segments) == 2 and segments[1][1] is None:
        first, second = segments[0][0], segments[1][0]

        # ``customer.email``: the most common nested path, two lookups and no loop.
        def get_two(data: Mapping[str, Any]) -> Any:
            inner = data.get(first)
            if type(inner) is dict or isinstance(inner, Mapping):
                return inner.get(second, MISSING)
            return MISSING

        return get_two

    def get_nested(data: Mapping[str, Any]) -> Any:
        value: Any = data
        for key, index in segments:
            # dict and list first: events are plain JSON, the ABC checks are slower.
            if isinstance(value, dict):
                value = value.get(key, MISSING)
                if value is MISSING:
                    return MISSING
            elif isinstance(value, (list, tuple)):
                if index is None or index >= len(value):
                    return MISSING
                value = value[index]
            elif isinstance(value, Mapping):
                value = value.get(key, MISSING)
                if value is MISSING:
                    return MISSING
            else:
                return MISSING
        return value

    return get_nested


_cached_getter = lru_cache(maxsize=1024)(compile_path)


def get_path(data: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` in ``data``, or MISSING. Raises ValueError for a bad path."""
    return _cached_getter(path)(data)
