"""One runner per connector: its queue, batches, concurrency, rate limit and health.

Isolation comes from here: each connector has its own bounded queue and its own worker
tasks, and the dispatcher only claims work for a connector that has room, so a vendor
that hangs fills its own queue and nobody else's.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice import metrics
from sluice.connectors.definition import ActionInput, HttpRequest, HttpResponse
from sluice.connectors.masking import mask_request, mask_response
from sluice.delivery.health import Health, HealthState
from sluice.delivery.limits import RateLimiter
from sluice.delivery.outcomes import ErrorRecord, Item
from sluice.delivery.policy import next_retry
from sluice.delivery.transport import TransportError
from sluice.engine.compiled import DeliverySettings, LiveAction, LiveConnector
from sluice.engine.router import TraceStep
from sluice.errors import (
    DeliveryError,
    FatalDelivery,
    MappingError,
    RetryableDelivery,
    SkippableDelivery,
)

if TYPE_CHECKING:
    from sluice.delivery.engine import DeliveryEngine

log = logging.getLogger("sluice.delivery")

RATE_HORIZON_SECONDS = 5.0


@dataclass
class _Batch:
    items: list[Item] = field(default_factory=list)
    size: int = 0
    started: float = 0.0


class ConnectorRunner:
    def __init__(self, engine: DeliveryEngine, connector_id: str) -> None:
        self.engine = engine
        self.connector_id = connector_id
        self.units: deque[tuple[str, list[Item]]] = deque()
        self.batches: dict[str, _Batch] = {}
        self.held = 0  # items claimed and not yet finished
        self.wake_at = 0.0  # when the dispatcher should next look for due work
        self.starved = False  # due rows wait for room in this runner
        self._ready = asyncio.Event()
        self._workers: list[asyncio.Task[None]] = []
        self._batch_timer: asyncio.Task[None] | None = None
        settings = self.settings
        self.limiter = RateLimiter(settings.rate_limit)
        self.health = Health(on_change=self._health_changed)
        self._capacity: tuple[int, int] | None = None  # (config revision, capacity)
        self._outcome_metrics: dict[tuple[str, str], Any] = {}
        self._latency: Any = None

    # --- configuration ----------------------------------------------------------------

    @property
    def connector(self) -> LiveConnector | None:
        return self.engine.config.connectors.get(self.connector_id)

    @property
    def settings(self) -> DeliverySettings:
        connector = self.connector
        return connector.settings if connector is not None else DeliverySettings()

    def capacity(self) -> int:
        revision = self.engine.config.revision
        if self._capacity is None or self._capacity[0] != revision:
            self._capacity = (revision, self._compute_capacity())
        return self._capacity[1]

    def _count(self, type_id: str, outcome: str) -> None:
        child = self._outcome_metrics.get((type_id, outcome))
        if child is None:
            child = self._outcome_metrics[(type_id, outcome)] = metrics.DELIVERIES.labels(
                type_id, outcome
            )
        child.inc()

    def _compute_capacity(self) -> int:
        settings = self.settings
        cap = max(1024, settings.concurrency * 64)
        connector = self.connector
        if connector is not None:
            for action_type in connector.type.actions:
                if action_type.batching is not None:
                    cap = max(cap, action_type.batching.max_count * 2 * settings.concurrency)
        return min(cap, 20_000)

    def _limit(self) -> int:
        capacity = self.capacity()
        rate = self.limiter.rate
        if rate is not None:
            # Take no more than a few seconds' worth at the current pace: what waits
            # longer should wait as a row, not hold memory (or its event's outcomes).
            capacity = min(capacity, max(16, int(rate * RATE_HORIZON_SECONDS)))
        return capacity

    def room(self) -> int:
        if not self.health.may_send_soon():
            return 0
        return max(0, self._limit() - self.held)

    def hungry(self) -> bool:
        """Whether a quarter of its queue or more is free.

        Routing waits for that rather than top the queue up after every few deliveries:
        a routing transaction costs about the same for 100 events as for 500, and with
        three quarters still queued the workers do not run dry meanwhile.
        """
        if not self.health.may_send_soon():
            return False
        limit = self._limit()
        room = limit - self.held
        return room > 0 and room * 4 >= limit

    def start(self) -> None:
        self._resize()

    def _resize(self) -> None:
        wanted = self.settings.concurrency
        self._workers = [w for w in self._workers if not w.done()]
        while len(self._workers) < wanted:
            self._workers.append(asyncio.create_task(self._work()))
        self.limiter.configure(self.settings.rate_limit)

    def reconfigure(self) -> None:
        self._resize()

    async def stop(self) -> None:
        for task in self._workers:
            task.cancel()
        if self._batch_timer is not None:
            self._batch_timer.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers = []

    # --- taking work ------------------------------------------------------------------

    def offer(self, items: list[Item]) -> None:
        now = time.time()
        for item in items:
            self.held += 1
            action = self.engine.config.actions.get(item.action_id)
            batching = action.batching if action is not None else None
            if batching is None:
                self.units.append((item.action_id, [item]))
                continue
            batch = self.batches.get(item.action_id)
            if batch is None:
                batch = self.batches[item.action_id] = _Batch(started=now)
            size = len(item.payload) * 48  # cheap estimate; the exact size is the vendor's
            batch.items.append(item)
            batch.size += size
            if len(batch.items) >= batching.max_count or batch.size >= batching.max_bytes:
                self.units.append((item.action_id, batch.items))
                del self.batches[item.action_id]
        if self.batches and self._batch_timer is None:
            self._batch_timer = asyncio.create_task(self._flush_batches_when_old())
        self._ready.set()

    def forget(self, seqs: set[int]) -> None:
        """Drop the queued rows among ``seqs``: their lease went to another process,
        which delivers them. Nothing is recorded for them here."""
        gone: list[Item] = []
        for _, items in [*self.units, *((a, b.items) for a, b in self.batches.items())]:
            if any(item.seq in seqs for item in items):
                gone.extend(item for item in items if item.seq in seqs)
                items[:] = [item for item in items if item.seq not in seqs]
        if gone:
            self.engine.finished(gone)

    def _still_held(self, items: list[Item]) -> list[Item]:
        held = self.engine.held
        gone = [item for item in items if item.seq and item.seq not in held]
        if not gone:
            return items
        self.engine.finished(gone)
        return [item for item in items if not item.seq or item.seq in held]

    def flush_batches(self) -> None:
        for action_id, batch in list(self.batches.items()):
            self.units.append((action_id, batch.items))
        self.batches.clear()
        self._ready.set()

    async def _flush_batches_when_old(self) -> None:
        try:
            while self.batches:
                now = time.time()
                soonest = None
                for action_id, batch in list(self.batches.items()):
                    action = self.engine.config.actions.get(action_id)
                    age = action.batching.max_age_seconds if action and action.batching else 0
                    due = batch.started + age
                    if due <= now or self.engine.draining:
                        self.units.append((action_id, batch.items))
                        del self.batches[action_id]
                        self._ready.set()
                    else:
                        soonest = due if soonest is None else min(soonest, due)
                if soonest is not None:
                    await asyncio.sleep(max(0.01, min(soonest - now, 1.0)))
        finally:
            self._batch_timer = None

    async def _next_unit(self) -> tuple[str, list[Item]]:
        while not self.units:
            self._ready.clear()
            self.health.finish_probe_if_idle()
            await self._ready.wait()
        return self.units.popleft()

    # --- sending ----------------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            unit = await self._next_unit()
            try:
                if not await self.engine.leases_checked():
                    unit = (unit[0], self._still_held(unit[1]))
                if not self.health.may_send():
                    # Due at once: no room is offered while paused, so they are claimed
                    # when the pause ends or an operator resumes the connector.
                    due = time.time()
                    unit = (unit[0], self._defer_in_memory(unit[1], due, "connector paused"))
                    self._defer_queued(due, "connector paused")
                while not self.health.may_send():  # noqa: ASYNC110 - a timed pause
                    await asyncio.sleep(min(1.0, max(0.05, self.health.wait_seconds())))
                if unit[1]:
                    await self._process(*unit)
            except asyncio.CancelledError:
                self.units.appendleft(unit)  # stays leased; re-queued by the lease expiry
                raise
            except Exception:  # one bad unit must not kill the worker
                log.exception("delivery to connector %s failed unexpectedly", self.connector_id)
                self._finish_error(unit[1], None, "connection", "internal error", None, None)

    def _defer_queued(self, due: float, why: str) -> None:
        for _, items in self.units:
            items[:] = self._defer_in_memory(items, due, why)

    def _defer_in_memory(self, items: list[Item], due: float, why: str) -> list[Item]:
        """Hand the in-memory first attempts among ``items`` back as rows due at ``due``;
        returns the items that stay queued here.

        An event's outcomes are written once all of its in-memory first attempts have
        one, so an attempt parked behind a pause or a 429 slowdown would hold back the
        retries and counters of the event's other connectors for as long. As rows, they
        are claimed again when this connector has room.
        """
        if not any(item.inflight is not None for item in items):
            return items
        now = time.time()
        deferred = [item for item in items if item.inflight is not None]
        kept = [item for item in items if item.inflight is None]
        for item in deferred:
            self.engine.outcomes.defer(item, due, why, now)
        self.engine.finished(deferred)
        return kept

    def _finish_error(
        self,
        items: list[Item],
        action: LiveAction | None,
        category: str,
        message: str,
        request: dict[str, Any] | None,
        response: dict[str, Any] | None,
        status: int | None = None,
        attempted: bool = True,
    ) -> None:
        out = self.engine.outcomes
        now = time.time()
        for item in items:
            attempts = item.attempts + (1 if attempted else 0)
            out.error(
                ErrorRecord(
                    item,
                    action.connector.name if action else "",
                    action.name if action else "",
                    attempts,
                    category,
                    status,
                    message,
                    request,
                    response,
                ),
                now,
            )
        self.engine.finished(items)

    async def _process(self, action_id: str, items: list[Item]) -> None:
        engine = self.engine
        action = engine.config.actions.get(action_id)
        now = time.time()
        if action is None or not action.enabled or action.connector.id != self.connector_id:
            for item in items:
                engine.outcomes.drop(item, now)
            engine.finished(items)
            return
        inputs: list[ActionInput] = []
        ready: list[Item] = []
        for item in items:
            try:
                params = action.mappings.resolve(item.context)
            except MappingError as exc:
                self._finish_error([item], action, "mapping", str(exc), None, None, attempted=False)
                continue
            inputs.append(
                ActionInput(params, item.context, item.event_id, f"{item.event_id}:{action.id}")
            )
            ready.append(item)
        if not ready:
            return
        connector = action.connector
        try:
            requests = action.type.build(connector.context, inputs)
        except MappingError as exc:
            self._finish_error(ready, action, "mapping", str(exc), None, None, attempted=False)
            return
        except SkippableDelivery:
            for item in ready:
                engine.outcomes.drop(item, now)
            engine.finished(ready)
            return
        except DeliveryError as exc:
            self._finish_error(
                ready, action, exc.category, exc.message, None, None, attempted=False
            )
            return
        except (ValueError, TypeError, KeyError) as exc:
            message = str(exc) or type(exc).__name__
            self._finish_error(ready, action, "mapping", message, None, None, attempted=False)
            return
        count = len(ready)
        covered: set[int] = set()
        for request in requests:
            indexes = [i for i in request.items if 0 <= i < count]
            if indexes:
                covered.update(indexes)
                await self._send(action, request, [ready[i] for i in indexes])
        if len(covered) < count:
            skipped = [item for i, item in enumerate(ready) if i not in covered]
            for item in skipped:
                engine.outcomes.drop(item, now)
            engine.finished(skipped)

    async def _send(self, action: LiveAction, request: HttpRequest, items: list[Item]) -> None:
        engine = self.engine
        settings = action.connector.settings
        if self.limiter.delay() > 0:  # takes a token when there is one, else waits
            await self.limiter.acquire()
        response: HttpResponse | None = None
        outcomes: list[DeliveryError | None]
        started = time.perf_counter()
        try:
            response = await engine.transport.send(request, settings.timeout)
        except TransportError as exc:
            error: DeliveryError
            if exc.refused:
                error = FatalDelivery("connection", exc.message)
            elif exc.kind == "timeout" and not action.type.idempotent:
                error = FatalDelivery(
                    "timeout", f"{exc.message}; not retried: this action is not idempotent"
                )
            else:
                error = RetryableDelivery(exc.kind, exc.message)
            outcomes = [error] * len(items)
        else:
            try:
                verdict = action.type.classify(request, response)
            except Exception as exc:  # a connector bug must not lose the outcome
                log.exception("classify of %s failed", action.type.id)
                verdict = FatalDelivery("http_4xx", f"cannot read the vendor's answer: {exc}")
            if isinstance(verdict, list):
                outcomes = list(verdict) + [None] * (len(items) - len(verdict))
            else:
                outcomes = [verdict] * len(items)
        if self._latency is None:
            self._latency = metrics.DELIVERY_LATENCY.labels(self.connector_id)
        self._latency.observe(time.perf_counter() - started)
        self._settle(action, request, response, items, outcomes)

    def _settle(
        self,
        action: LiveAction,
        request: HttpRequest,
        response: HttpResponse | None,
        items: list[Item],
        outcomes: list[DeliveryError | None],
    ) -> None:
        engine = self.engine
        out = engine.outcomes
        now = time.time()
        connector = action.connector
        shown_request: dict[str, Any] | None = None
        shown_response: dict[str, Any] | None = None
        type_id = connector.type.id
        for item, outcome in zip(items, outcomes, strict=False):
            attempts = item.attempts + 1
            if outcome is None:
                out.success(item, now)
                self.health.record(True)
                self._count(type_id, "success")
            elif isinstance(outcome, SkippableDelivery):
                out.drop(item, now)
                self._count(type_id, "dropped")
            else:
                self.health.record(False)
                if outcome.category == "rate_limit":
                    retry_after = getattr(outcome, "retry_after", None)
                    self.limiter.throttled(retry_after, connector.settings.concurrency)
                    self._defer_queued(now + (retry_after or 1.0), "vendor rate limit (429)")
                retry = None
                if isinstance(outcome, RetryableDelivery):
                    retry = next_retry(
                        attempts, item.received_at, now, connector.settings, outcome.retry_after
                    )
                if retry is not None:
                    out.retry(item, retry.at, attempts, outcome.message, now)
                    self._count(type_id, "retried")
                else:
                    if shown_request is None:
                        shown_request = mask_request(request, connector.secrets)
                        if response is not None:
                            shown_response = mask_response(response, connector.secrets)
                    out.error(
                        ErrorRecord(
                            item,
                            connector.name,
                            action.name,
                            attempts,
                            outcome.category,
                            outcome.status_code,
                            outcome.message,
                            shown_request,
                            shown_response,
                        ),
                        now,
                    )
                    self._count(type_id, "error")
            trace_id = item.payload.get("tealium_trace_id")
            if trace_id:
                out.trace(
                    item,
                    TraceStep(
                        item.profile_id,
                        str(trace_id),
                        item.event_id,
                        "delivery",
                        {
                            "action_id": action.id,
                            "action_name": action.name,
                            "attempt": attempts,
                            "request": mask_request(request, connector.secrets),
                            "response": mask_response(response, connector.secrets)
                            if response is not None
                            else None,
                            "outcome": "success"
                            if outcome is None
                            else {"category": outcome.category, "message": outcome.message},
                        },
                    ),
                )
        engine.finished(items)

    def _health_changed(self, state: HealthState) -> None:
        self.engine.health_changed(self.connector_id, state)
