"""Collects validation problems so a user sees every mistake of a request at once."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping

from sluice.errors import ValidationFailed


class Problems:
    """Field-named problems, raised together as one :class:`ValidationFailed`."""

    def __init__(self) -> None:
        self.details: list[dict[str, str]] = []

    def add(self, field: str, message: str) -> None:
        self.details.append({"field": field, "message": message})

    def absorb(self, error: ValidationFailed) -> None:
        self.details.extend(error.details)

    def raise_if_any(self) -> None:
        if not self.details:
            return
        first = self.details[0]
        message = f"{first['field']}: {first['message']}"
        if len(self.details) > 1:
            message += f" (and {len(self.details) - 1} more)"
        raise ValidationFailed(message, list(self.details))


def choices(
    kind: str, name: object, valid: Iterable[str], aliases: Mapping[str, str] | None = None
) -> str:
    """``unknown operator 'equal' (did you mean 'equals'?); valid operators: ...``.

    ``aliases`` suggests for names that look nothing alike (``">="`` → ``gte``).
    """
    options = list(valid)
    hint = ""
    if isinstance(name, str):
        close = difflib.get_close_matches(name, options, n=1)
        suggestion = (aliases or {}).get(name.strip().lower()) or (close[0] if close else None)
        if suggestion:
            hint = f" (did you mean {suggestion!r}?)"
    return f"unknown {kind} {name!r}{hint}; valid {kind}s: {', '.join(options)}"
