"""JSON through orjson: fast, and the same bytes on every backend."""

from __future__ import annotations

from typing import Any

import orjson


def dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def dumpb(value: Any) -> bytes:
    return orjson.dumps(value)


def loads(text: str | bytes | None) -> Any:
    if text is None:
        return None
    return orjson.loads(text)
