"""The token bucket behind both rate limits: the collect API's per profile (counted in
events) and delivery's per connector (counted in requests)."""

from __future__ import annotations


class TokenBucket:
    """Tokens refill at a rate per second, up to a second's worth (at least one token).

    The rate is given on every call, so the owner may change it at any time.
    """

    __slots__ = ("last", "tokens")

    def __init__(self, tokens: float, now: float) -> None:
        self.tokens = tokens
        self.last = now

    def take(self, count: float, rate: float, now: float) -> float:
        """Take ``count`` tokens and return 0 when there are enough; otherwise take none
        and return the seconds until there would be."""
        self.tokens = min(max(rate, 1.0), self.tokens + (now - self.last) * rate)
        self.last = now
        if self.tokens >= count:
            self.tokens -= count
            return 0.0
        return (count - self.tokens) / rate
