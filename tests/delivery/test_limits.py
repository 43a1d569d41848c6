"""The per-connector rate limiter: a token bucket that halves on 429 and grows back."""

from __future__ import annotations

from sluice.delivery.limits import RateLimiter
from sluice.delivery.policy import backoff, next_retry
from sluice.engine.compiled import DeliverySettings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_configured_rate_is_enforced() -> None:
    clock = Clock()
    limiter = RateLimiter(10, clock=clock)
    sent = 0
    while limiter.delay() == 0:
        sent += 1
    assert sent <= 10
    clock.now += 1.0
    sent = sum(1 for _ in range(100) if limiter.delay() == 0)
    assert 9 <= sent <= 11


def test_429_halves_the_rate_honours_retry_after_and_recovers() -> None:
    clock = Clock()
    limiter = RateLimiter(20, clock=clock)
    limiter.throttled(retry_after=5)
    assert limiter.rate == 10
    assert limiter.delay() == 5
    clock.now += 4.9
    assert limiter.delay() > 0
    assert limiter.rate == 10
    clock.now += 0.1
    assert limiter.delay() == 0
    assert limiter.rate == 15  # grows by half every 5 s without a 429
    for _ in range(20):
        clock.now += 5.5
        limiter.delay()
    assert limiter.rate == 20  # never above the configured limit


def test_the_429s_of_one_concurrent_wave_halve_the_rate_once() -> None:
    clock = Clock()
    limiter = RateLimiter(64, clock=clock)
    for _ in range(16):  # sixteen requests in flight all come back 429
        limiter.throttled(retry_after=None)
        clock.now += 0.01
    assert limiter.rate == 32
    clock.now += 1.0
    limiter.throttled(retry_after=None)  # a later wave: the vendor still says slow down
    assert limiter.rate == 16


def test_an_unlimited_connector_throttled_to_the_floor_is_unlimited_within_two_minutes() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock)
    limiter.throttled(retry_after=None)
    assert limiter.rate == 1.0
    waited = 0.0
    while limiter.rate is not None:
        clock.now += 1.0
        waited += 1.0
        limiter.delay()
    assert waited <= 120


def test_unlimited_connector_gets_a_limit_from_its_own_pace_on_429() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock)
    for _ in range(300):
        assert limiter.delay() == 0
    limiter.throttled(retry_after=None)
    assert limiter.rate == 150  # half of what it was sending


def test_backoff_grows_threefold_with_jitter_and_has_limits() -> None:
    settings = DeliverySettings(first_retry=10, max_attempts=8, max_retry_hours=24)
    waits = [backoff(n, settings) for n in range(1, 8)]
    for n, wait in enumerate(waits):
        base = 10 * 3**n
        assert min(base * 0.8, 4 * 3600) <= wait <= min(base * 1.2, 4 * 3600)
    assert next_retry(8, 0, 0, settings, None) is None  # eight attempts made: final
    retry = next_retry(1, 0, 0, settings, retry_after=120)
    assert retry is not None
    assert retry.at >= 120  # Retry-After is honoured
    assert next_retry(1, 0, 24 * 3600 - 1, settings, None) is None  # past the age limit


def test_a_429_among_the_first_requests_starts_from_the_connector_concurrency() -> None:
    clock = Clock()
    limiter = RateLimiter(None, clock=clock)
    assert limiter.delay() == 0  # one request so far: no pace to speak of
    limiter.throttled(retry_after=None, concurrency=16)
    assert limiter.rate == 8
