"""The collect API's per-profile rate limit (the profile setting ``rate_limit_per_second``)."""

from __future__ import annotations

import time

from sluice.engine.compiled import LiveProfile
from sluice.tokenbucket import TokenBucket


class ProfileRateLimits:
    """A token bucket per profile, counted in events, holding at most a second's worth."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}  # by profile id

    def check(self, profile: LiveProfile, count: int) -> float | None:
        """None if ``count`` events may pass now (and takes them), else seconds to wait."""
        setting = profile.settings.get("rate_limit_per_second")
        if not setting:
            return None
        rate = float(setting)
        now = time.monotonic()
        bucket = self._buckets.get(profile.id)
        if bucket is None:
            bucket = self._buckets[profile.id] = TokenBucket(max(rate, 1.0), now)
        wait = bucket.take(count, rate, now)
        return max(1.0, wait) if wait else None
