"""Checking one incoming event: an object, no dots in keys, not too deep."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import orjson


class CollectError(Exception):
    """A request the collect API refuses; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.retry_after = retry_after


def parse_json(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise CollectError(400, f"malformed JSON: {exc}") from exc


def parse_form(body: bytes) -> dict[str, Any]:
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CollectError(400, "the form body is not valid UTF-8") from exc
    return pairs_to_event(parse_qsl(text, keep_blank_values=True))


def pairs_to_event(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Form or query pairs to an event; a key given more than once becomes a list."""
    event: dict[str, Any] = {}
    for key, value in pairs:
        if key.endswith("[]"):
            key = key[:-2]
            event.setdefault(key, [])
        if key in event:
            current = event[key]
            if isinstance(current, list):
                current.append(value)
            else:
                event[key] = [current, value]
        else:
            event[key] = value
    return event


def check_structure(value: Any, max_depth: int, where: str = "the event") -> None:
    """No ``.`` in any key at any depth; nesting no deeper than ``max_depth``."""
    # Iterative, so hostile nesting cannot exhaust the Python stack.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > max_depth:
            raise CollectError(400, f"{where} is nested deeper than {max_depth} levels")
        if isinstance(node, dict):
            for key, child in node.items():
                if "." in key:
                    raise CollectError(400, f"the key {key[:100]!r} contains a '.'")
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1))
        elif isinstance(node, list):
            for child in node:
                if isinstance(child, dict | list):
                    stack.append((child, depth + 1))


def check_event(value: Any, max_depth: int, where: str = "the event") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise CollectError(400, f"{where} must be a JSON object")
    check_structure(value, max_depth, where)
    return value
