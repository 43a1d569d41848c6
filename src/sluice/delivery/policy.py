"""The retry policy of SPEC §5: what to retry, and when.

Waits grow threefold from ``first_retry_seconds`` (10 s, 30 s, 90 s, 4.5 min, 13.5 min,
40 min, 2 h) with ±20 % jitter, so the default 8 attempts span about 3 hours: more
patient than Tealium's 1 / 5 / 30 minutes. A vendor's ``Retry-After`` replaces the
computed wait when it is longer. A delivery is final after ``max_attempts`` attempts or
when the next try would fall after ``max_retry_hours`` from the event's arrival.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from sluice.engine.compiled import DeliverySettings

BACKOFF_FACTOR = 3.0
MAX_WAIT_SECONDS = 4 * 3600.0


@dataclass(frozen=True)
class RetryAt:
    at: float


def backoff(attempts: int, settings: DeliverySettings, rng: random.Random | None = None) -> float:
    """Seconds to wait after ``attempts`` failed attempts (1 for the first failure)."""
    base = settings.first_retry * BACKOFF_FACTOR ** max(0, attempts - 1)
    jitter = (rng or random).uniform(0.8, 1.2)
    return min(MAX_WAIT_SECONDS, base * jitter)


def next_retry(
    attempts: int,
    received_at: float,
    now: float,
    settings: DeliverySettings,
    retry_after: float | None,
    rng: random.Random | None = None,
) -> RetryAt | None:
    """When to try again after ``attempts`` attempts, or None when it is final."""
    if attempts >= settings.max_attempts:
        return None
    wait = backoff(attempts, settings, rng)
    if retry_after is not None:
        wait = max(wait, min(retry_after, MAX_WAIT_SECONDS))
    at = now + wait
    if at > received_at + settings.max_retry_hours * 3600:
        return None
    return RetryAt(at)
