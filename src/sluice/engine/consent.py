"""Consent (SPEC §5): may an action with these consent categories get this event?

Categories match after :func:`normalize_category`, so ``"Display_Ads"``, ``"display ads"``
and ``"display-ads"`` are one category.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any

# Events that record a consent decision must reach the vendors whatever was consented.
CONSENT_EVENTS = frozenset({"grant_full_consent", "grant_partial_consent", "decline_consent"})

_DROPPED = str.maketrans("", "", " _-\t")


def normalize_category(category: str) -> str:
    """Lowercase, without spaces, ``_`` and ``-``: ``"Display_Ads"`` → ``"displayads"``."""
    return category.lower().translate(_DROPPED)


def _normalised(items: Iterable[str]) -> frozenset[str]:
    names = (normalize_category(item.strip()) for item in items)
    return frozenset(name for name in names if name)


# Events of one site carry the same few category strings: each is parsed once. Only
# short ones are cached, so that odd events cannot fill memory through the cache.
_CACHED_LENGTH = 512


@lru_cache(maxsize=4096)
def _parse_cached(value: str) -> frozenset[str]:
    return _normalised(value.split(","))


def parse_event_categories(value: Any) -> frozenset[str] | None:
    """The event's normalised ``consent_categories`` (array or comma-separated); None if absent."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        # No category name holds a comma: a list reads as its comma-joined text.
        value = ",".join(
            item if isinstance(item, str) else str(item) for item in value if item is not None
        )
    elif not isinstance(value, str):
        value = str(value)
    if len(value) <= _CACHED_LENGTH:
        return _parse_cached(value)
    return _normalised(value.split(","))


def consent_allows(
    required: frozenset[str],
    event: Mapping[str, Any],
    *,
    enforcement: bool,
    missing: str,
) -> bool:
    """True when the event may go to an action needing the ``required`` (normalised) categories.

    ``missing`` is the profile's rule for events without ``consent_categories``:
    ``"allow"`` (Tealium's behaviour) or ``"deny"``.
    """
    if not enforcement or not required:
        return True
    name = event.get("tealium_event")
    if isinstance(name, str) and name.lower() in CONSENT_EVENTS:
        return True
    granted = parse_event_categories(event.get("consent_categories"))
    if granted is None:
        return missing != "deny"
    return required <= granted
