"""Timestamps: float epoch seconds inside, ISO 8601 UTC with ``Z`` outside."""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now() -> float:
    return time.time()


_second_cache: tuple[int, str] = (-1, "")


def iso(ts: float | None) -> str | None:
    """``2026-11-28T10:00:00.123Z``; the collect API calls this for every event."""
    global _second_cache
    if ts is None:
        return None
    second = int(ts // 1)
    cached_second, text = _second_cache
    if second != cached_second:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _second_cache = (second, text)
    return f"{text}.{int((ts - second) * 1000):03d}Z"


def parse_iso(text: str) -> float:
    """Parse an ISO 8601 timestamp; naive times are taken as UTC. Raises ValueError."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()
