"""Overload protection (SPEC §5, Tealium's numbers), one state machine per connector.

::

    ok ──(>40 % of the last 100 attempts failed)──▶ paused 60 s
    paused ──(60 s later)──▶ probing: up to 50 deliveries go out
    probing ──(>20 % of the probe failed)──▶ paused again (5 pauses in a row: unhealthy)
    probing ──(otherwise)──▶ ok
    unhealthy ──(every 60 s)──▶ probing, as above

While paused, deliveries wait in the queue; waiting is not an attempt.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW = 100
FAIL_RATIO = 0.40
PAUSE_SECONDS = 60.0
PROBE_SIZE = 50
PROBE_FAIL_RATIO = 0.20
UNHEALTHY_AFTER = 5


@dataclass
class HealthState:
    state: str  # ok | paused | unhealthy
    since: float | None
    reason: str | None
    pauses: int


class Health:
    def __init__(
        self,
        on_change: Callable[[HealthState], None] | None = None,
        clock: Callable[[], float] = time.time,
        pause_seconds: float = PAUSE_SECONDS,
    ) -> None:
        self._clock = clock
        self._on_change = on_change
        self.pause_seconds = pause_seconds
        self.window: deque[bool] = deque(maxlen=WINDOW)
        self.window_failures = 0
        self.state = HealthState("ok", None, None, 0)
        self.paused_until = 0.0
        self.probing = False
        self.probe_sent = 0
        self.probe_results: list[bool] = []

    # --- asked before each send ----------------------------------------------------------

    def may_send(self) -> bool:
        """Whether one more delivery may go out now (and count it, when probing)."""
        if self.state.state == "ok" and not self.probing:
            return True
        now = self._clock()
        if now < self.paused_until:
            return False
        if not self.probing:
            self.probing = True
            self.probe_sent = 0
            self.probe_results = []
        if self.probe_sent >= PROBE_SIZE:
            return False
        self.probe_sent += 1
        return True

    def may_send_soon(self) -> bool:
        """Whether to claim more work for this connector (not while it is paused)."""
        return self._clock() >= self.paused_until

    def wait_seconds(self) -> float:
        return max(0.0, self.paused_until - self._clock())

    # --- told after each attempt ------------------------------------------------------

    def record(self, ok: bool) -> None:
        if self.probing:
            self.probe_results.append(ok)
            if len(self.probe_results) >= self.probe_sent and (
                self.probe_sent >= PROBE_SIZE or len(self.probe_results) >= PROBE_SIZE
            ):
                self._judge_probe()
            return
        if self.state.state != "ok":
            return
        window = self.window
        if len(window) == WINDOW and not window[0]:
            self.window_failures -= 1
        window.append(ok)
        if not ok:
            self.window_failures += 1
            if len(window) == WINDOW and self.window_failures > FAIL_RATIO * WINDOW:
                self._pause(f"{self.window_failures} of the last {WINDOW} attempts failed")

    def finish_probe_if_idle(self) -> None:
        """A probe with fewer than 50 deliveries available is judged on what it sent."""
        if self.probing and self.probe_results and len(self.probe_results) >= self.probe_sent:
            self._judge_probe()

    def _judge_probe(self) -> None:
        results = self.probe_results
        failed = results.count(False)
        self.probing = False
        if failed > PROBE_FAIL_RATIO * len(results):
            self._pause(f"{failed} of {len(results)} probe deliveries failed")
        else:
            self.resume()

    def _pause(self, reason: str) -> None:
        now = self._clock()
        pauses = self.state.pauses + 1
        state = "unhealthy" if pauses >= UNHEALTHY_AFTER else "paused"
        self.paused_until = now + self.pause_seconds
        self.window.clear()
        self.window_failures = 0
        since = self.state.since if self.state.state == state and self.state.since else now
        self._set(HealthState(state, since, reason, pauses))

    def resume(self) -> None:
        self.paused_until = 0.0
        self.probing = False
        self.window.clear()
        self.window_failures = 0
        if self.state.state != "ok" or self.state.pauses:
            self._set(HealthState("ok", self._clock(), None, 0))

    def _set(self, state: HealthState) -> None:
        self.state = state
        if self._on_change is not None:
            self._on_change(state)
