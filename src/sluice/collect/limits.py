"""The collect API's per-profile rate limit (the profile setting ``rate_limit_per_second``)."""

from __future__ import annotations

import time

from sluice.engine.compiled import LiveProfile


class ProfileRateLimits:
    """A token bucket per profile, counted in events, holding at most a second's worth."""

    def __init__(self) -> None:
        self._buckets: dict[str, tuple[float, float]] = {}  # profile id -> (tokens, when)

    def check(self, profile: LiveProfile, count: int) -> float | None:
        """None if ``count`` events may pass now (and takes them), else seconds to wait."""
        setting = profile.settings.get("rate_limit_per_second")
        if not setting:
            return None
        rate = float(setting)
        now = time.monotonic()
        capacity = max(rate, 1.0)
        tokens, last = self._buckets.get(profile.id, (capacity, now))
        tokens = min(capacity, tokens + (now - last) * rate)
        if count > tokens:
            self._buckets[profile.id] = (tokens, now)
            return max(1.0, (count - tokens) / rate)
        self._buckets[profile.id] = (tokens - count, now)
        return None
