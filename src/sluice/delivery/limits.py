"""Per-connector request rate: a token bucket that slows down when the vendor says 429.

With a configured limit, the bucket refills at that rate. On a 429 the rate is halved
(down to 1 request/s) and, if the vendor sent ``Retry-After``, nothing goes out until then.
The 429s of one wave of concurrent requests (within a second of the first) halve it once:
they answer the same overload. Every 5 s without a 429 it grows by half until it is back
at the configured limit (or, without one, until the limit is lifted again), so an unlimited
connector throttled down to 1 request/s is unlimited again after about 90 s.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from sluice.tokenbucket import TokenBucket

RECOVER_EVERY = 5.0
RECOVER_FACTOR = 1.5
WAVE_SECONDS = 1.0


class RateLimiter:
    def __init__(self, rate: float | None, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.configured = rate
        self.rate = rate  # None: no limit
        self._bucket = TokenBucket(1.0, clock())
        self._blocked_until = 0.0
        self._last_429 = 0.0
        self._halved_at = float("-inf")
        # Requests sent in the current and the previous whole second, to know the pace.
        self._second = 0
        self._this_second = 0
        self._prev_second = 0

    def configure(self, rate: float | None) -> None:
        if rate != self.configured:
            self.configured = rate
            self.rate = rate

    def throttled(self, retry_after: float | None, concurrency: int = 1) -> None:
        """A 429. Without a limit yet, the new one is half of the pace measured over the
        last second, or of ``concurrency`` requests/s if that is more (a 429 among the
        very first requests says little about the pace the vendor takes)."""
        now = self._clock()
        same_wave = now - self._halved_at < WAVE_SECONDS
        self._last_429 = now
        if not same_wave:
            self._halved_at = now
            observed = self._observed_rate(now)
            base = self.rate if self.rate is not None else max(observed, concurrency, 2.0)
            self.rate = max(1.0, base / 2)
        if retry_after:
            self._blocked_until = max(self._blocked_until, now + retry_after)

    def _count(self, now: float) -> None:
        second = int(now)
        if second != self._second:
            self._prev_second = self._this_second if second == self._second + 1 else 0
            self._this_second = 0
            self._second = second
        self._this_second += 1

    def _observed_rate(self, now: float) -> float:
        return float(max(self._prev_second, self._this_second))

    def _recover(self, now: float) -> None:
        if self.rate is None or now - self._last_429 < RECOVER_EVERY:
            return
        self._last_429 = now
        grown = self.rate * RECOVER_FACTOR
        if self.configured is not None:
            self.rate = min(self.configured, grown)
        elif grown > 1000:
            self.rate = None
        else:
            self.rate = grown

    def delay(self) -> float:
        """Seconds to wait before the next request; 0 takes a token now."""
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        self._recover(now)
        if self.rate is None:
            self._count(now)
            return 0.0
        wait = self._bucket.take(1.0, self.rate, now)
        if not wait:
            self._count(now)
        return wait

    async def acquire(self) -> None:
        while True:
            wait = self.delay()
            if wait <= 0:
                return
            await asyncio.sleep(wait)
