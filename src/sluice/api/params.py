"""Query parameters shared by several routes: time ranges and page sizes."""

from __future__ import annotations

from sluice import timeutil
from sluice.errors import BadRequest


def parse_time(value: str | None, param: str) -> float | None:
    """An ISO 8601 query parameter (``from``, ``to``) as epoch seconds; 400 naming it."""
    if value is None or not value.strip():
        return None
    try:
        return timeutil.parse_iso(value)
    except ValueError as exc:
        raise BadRequest(
            f"{param}: not an ISO 8601 timestamp (like 2025-01-31T12:00:00Z)",
            [{"field": param, "message": "not an ISO 8601 timestamp"}],
        ) from exc


def parse_range(
    start: str | None, end: str | None, *, from_param: str = "from", to_param: str = "to"
) -> tuple[float | None, float | None]:
    """Both ends of a time range; 400 when ``from`` is not before ``to``."""
    parsed_start = parse_time(start, from_param)
    parsed_end = parse_time(end, to_param)
    if parsed_start is not None and parsed_end is not None and parsed_start >= parsed_end:
        raise BadRequest(
            f"{from_param} must be before {to_param}",
            [{"field": from_param, "message": f"must be before {to_param}"}],
        )
    return parsed_start, parsed_end
