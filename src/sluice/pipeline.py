"""The data plane of one process: group-commit writer, router, delivery engine, jobs.

``sluice serve`` runs all of it (``--no-workers`` runs only what the collect API needs);
``sluice worker`` runs the routing and delivery side with no HTTP listener.

Routing happens inside one write transaction per batch: read unrouted events, route them
against the compiled config, insert their deliveries and counters, mark them routed. A
crash at any point leaves either all of that or none of it.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import time
from typing import Any

import orjson
from sqlalchemy import Connection

from sluice import jsonutil, memory, metrics
from sluice.audiences.stage import AudienceStage
from sluice.auth import tokens
from sluice.collect.limits import ProfileRateLimits
from sluice.config import revision
from sluice.delivery.engine import DeliveryEngine
from sluice.delivery.outcomes import InFlight, Item
from sluice.delivery.transport import AiohttpTransport, Transport
from sluice.engine import compiled as compiled_config
from sluice.engine import discovery
from sluice.engine.compiled import CompiledConfig, LiveProfile
from sluice.engine.discovery import AttributeDiscovery
from sluice.engine.router import Routed, StoredEvent, TraceStep, route_events
from sluice.engine.templates import TemplateEngine
from sluice.reporting import retention
from sluice.reporting.counters import CounterDelta
from sluice.services import Services
from sluice.storage import datasets, fast, notify, queue
from sluice.storage.tables import traces
from sluice.storage.writer import Joiner, Writer

log = logging.getLogger("sluice.pipeline")

ROUTE_BATCH = 500
ROUTE_MARK_EVERY = 1.0  # seconds (SQLite)
OBSERVE_EVERY = 5.0
AUDIENCE_TIMERS_EVERY = 1.0


class Pipeline:
    def __init__(self, services: Services, transport: Transport | None = None) -> None:
        self.services = services
        settings = services.settings
        self.writer = Writer(services.db, window_ms=settings.commit_window_ms)
        self._event_store = Joiner(self.writer, queue.store_events)
        self.transport: Transport = transport or AiohttpTransport(
            allow_private=settings.allow_private_destinations
        )
        self.templates = TemplateEngine()
        self.config = CompiledConfig()
        self.ready = False
        self.run_workers = True
        self.engine: DeliveryEngine | None = None
        self.unrouted = 0
        self._new_events = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._reload_lock = asyncio.Lock()
        self._last_forced_reload = 0.0
        self._rate_limits = ProfileRateLimits()
        self._token_cache: dict[tuple[str, str], tuple[bool, float]] = {}
        self.discovery = AttributeDiscovery()
        # SQLite: events up to this seq are routed or in flight in this process.
        self._claimed_upto = 0
        # Connectors that got delivery rows in the last routing transaction.
        self._to_wake: set[str] = set()
        # Set by this process's API after a change, so routing sees it at once; changes
        # made by other processes are notified on PostgreSQL (``notify``), and also polled
        # for: every half second on SQLite, every ``poll_fallback_seconds`` on PostgreSQL.
        self.config_hint = False
        self._last_config_check = 0.0
        self._config_wake = asyncio.Event()
        self.listener: notify.Listener | None = None
        self._poll = 0.5 if services.db.is_sqlite else settings.poll_fallback_seconds
        # AudienceStream: set in start() when the workers run (see sluice.audiences).
        self.audiences: AudienceStage | None = None

    # --- lifecycle --------------------------------------------------------------------

    async def start(self, *, run_workers: bool) -> None:
        self.run_workers = run_workers
        # Read when /metrics is scraped, not written on every request.
        metrics.QUEUE_DEPTH.labels("unrouted").set_function(lambda: self.unrouted)
        metrics.QUEUE_DEPTH.labels("in_flight").set_function(self._in_flight)
        self.services.db.config_hooks.append(self._config_changed)
        self.services.db.start_checkpointer(finish=self.writer.checkpoint_soon)
        self.writer.start()
        await self.reload_config()
        if run_workers:
            if self.services.db.is_sqlite:
                # One SQLite process does all the work: leases of a previous run are void.
                await self.writer.run(queue.release_all_leases)
            self.unrouted = await self.writer.run(queue.count_unrouted)
            self.engine = DeliveryEngine(
                self.writer,
                self.transport,
                lambda: self.config,
                postgres=not self.services.db.is_sqlite,
                lease_seconds=self.services.settings.lease_seconds,
            )
            await self.engine.start()
            self.audiences = AudienceStage.from_settings(
                self.services.settings, postgres=not self.services.db.is_sqlite
            )
            self._tasks.append(asyncio.create_task(self._route_loop()))
            self._tasks.append(asyncio.create_task(self._audience_loop()))
            self._tasks.append(asyncio.create_task(self._observe_loop()))
            self._tasks.append(asyncio.create_task(retention.run_forever(self)))
            if self.services.db.is_sqlite:
                self._tasks.append(asyncio.create_task(self._route_mark_loop()))
        if not self.services.db.is_sqlite:
            self._tasks.append(asyncio.create_task(datasets.run_forever(self)))
            handlers = {
                notify.EVENTS: self._new_events.set,
                notify.DELIVERIES: self._deliveries_queued,
                notify.CONFIG: self._config_notified,
            }
            loop = asyncio.get_running_loop()
            self.listener = notify.Listener(self.services.db.url, handlers, loop)
            self.listener.start()
        self._tasks.append(asyncio.create_task(self._config_loop()))
        memory.settle_after_start()
        self.ready = True

    async def stop(self) -> None:
        self.ready = False
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        if self.listener is not None:
            await asyncio.to_thread(self.listener.stop)
            self.listener = None
        if self.engine is not None:
            await self.engine.stop()
        await self._flush_observations()
        await self.transport.close()
        await asyncio.to_thread(self.writer.stop)
        await asyncio.to_thread(self.services.db.stop_checkpointer)
        if self._config_changed in self.services.db.config_hooks:
            self.services.db.config_hooks.remove(self._config_changed)

    # --- the compiled configuration -----------------------------------------------------

    async def reload_config(self, *, force: bool = False) -> None:
        async with self._reload_lock:
            services = self.services

            def current() -> int:
                with services.db.read() as conn:
                    return revision.current(conn)

            if not force and await asyncio.to_thread(current) == self.config.revision:
                return

            def build() -> CompiledConfig:
                with services.db.read() as conn:
                    return compiled_config.build(
                        conn, services.registry, services.box, self.templates
                    )

            self.config = await asyncio.to_thread(build)
            if self.engine is not None:
                self.engine.config_changed()

    def _config_changed(self) -> None:
        self.config_hint = True

    def _config_notified(self) -> None:
        self.config_hint = True
        self._config_wake.set()
        self._new_events.set()  # the route loop reloads first thing

    def _deliveries_queued(self) -> None:
        if self.engine is not None:
            self.engine.wake_all()

    async def _config_loop(self) -> None:
        settings = self.services.settings
        interval = settings.config_poll_seconds if self.services.db.is_sqlite else self._poll
        while True:
            self._config_wake.clear()
            try:
                await asyncio.wait_for(self._config_wake.wait(), interval)
            except TimeoutError:
                pass
            try:
                await self.reload_config()
            except Exception:
                log.exception("reloading the configuration failed")

    async def _fresh_config(self) -> CompiledConfig:
        """After a miss: reload now (at most 5 times a second) in case something is new."""
        now = time.monotonic()
        if now - self._last_forced_reload > 0.2:
            self._last_forced_reload = now
            await self.reload_config()
        return self.config

    # --- what the collect API asks ------------------------------------------------------

    async def lookup_profile(self, account: str, profile: str) -> LiveProfile | None:
        found = self.config.profiles.get((account, profile))
        if found is None:
            found = (await self._fresh_config()).profiles.get((account, profile))
        return found

    async def known_data_source(self, profile: LiveProfile, key: Any) -> bool:
        if not isinstance(key, str):
            return False
        if key in profile.data_source_keys:
            return True
        config = await self._fresh_config()
        fresh = config.profiles_by_id.get(profile.id)
        return fresh is not None and key in fresh.data_source_keys

    async def collect_token_ok(self, header: str | None, profile: LiveProfile) -> bool:
        if not header:
            return False
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return False
        key = (hashlib.sha256(token.strip().encode()).hexdigest(), profile.id)
        cached = self._token_cache.get(key)
        now = time.monotonic()
        if cached is not None and now - cached[1] < 10:
            return cached[0]
        principal = await asyncio.to_thread(tokens.authenticate, self.services.db, token.strip())
        ok = principal is not None and principal.may_see(profile.account, profile.profile)
        self._token_cache[key] = (ok, now)
        return ok

    def rate_limit(self, profile: LiveProfile, count: int) -> float | None:
        """None if ``count`` events may pass now, else seconds until they could."""
        return self._rate_limits.check(profile, count)

    def queue_full(self, incoming: int) -> bool:
        return self.unrouted + incoming > self.services.settings.queue_bound

    async def store_events(self, rows: list[dict[str, Any]]) -> None:
        """Store accepted events; returns once they are committed (durable)."""
        values = [
            (r["id"], r["profile_id"], r["received_at"], r["payload"], r["visitor_id"])
            for r in rows
        ]
        await self._event_store.add(values)
        self.unrouted += len(rows)
        self._new_events.set()

    # --- routing ----------------------------------------------------------------------

    async def _route_loop(self) -> None:
        while True:
            try:
                if self.config_hint or time.monotonic() - self._last_config_check > self._poll:
                    self.config_hint = False
                    self._last_config_check = time.monotonic()
                    await self.reload_config()
                rooms = self.engine.rooms() if self.engine is not None else {}
                if rooms and self.engine is not None and not self.engine.hungry():
                    # Every connector's queue is (nearly) full: route more when one has
                    # room, rather than park thousands of deliveries in the table or
                    # spend a transaction on a handful of events.
                    self.engine.room_available.clear()
                    try:
                        await asyncio.wait_for(self.engine.room_available.wait(), 0.5)
                    except TimeoutError:
                        pass
                    continue
                limit = max(1, min(ROUTE_BATCH, max(rooms.values(), default=ROUTE_BATCH)))
                route = functools.partial(
                    self._route_batch, config=self.config, rooms=rooms, limit=limit
                )
                count, handoff, upto, leased = await self.writer.run(
                    route, weight=limit, if_cancelled=self._hand_back
                )
                # Only once that transaction committed: had it failed, the writer runs
                # the job again on its own, and it must read the same events again.
                self._claimed_upto = max(self._claimed_upto, upto)
                if self._to_wake and self.engine is not None:
                    # Rows that were not handed over wait in the table: claim them soon.
                    self.engine.wake(self._to_wake)
                    self._to_wake = set()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("routing failed; retrying")
                await asyncio.sleep(1.0)
                continue
            if count:
                self.unrouted = max(0, self.unrouted - count)
                if self.engine is not None:
                    self.engine.adopt(handoff, leased_until=leased)
                if count >= limit:
                    await asyncio.sleep(0)
                    continue
            await self._wait_for_work(self._poll)

    async def _route_mark_loop(self) -> None:
        """SQLite: move the route mark up every second (``queue.advance_route_low``), so
        that claims, counts and ``event_routes`` cover only recent events."""
        while True:
            await asyncio.sleep(ROUTE_MARK_EVERY)
            try:
                await self.writer.run(queue.advance_route_low)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("moving the route mark failed; trying again")

    def _hand_back(self, routed: tuple[int, list[Item], int, float]) -> None:
        # Stopping while routing: the rows it leased to this process are released with
        # the rest of the engine's work instead of waiting out their lease.
        if self.engine is not None:
            self.engine.held.update(item.seq for item in routed[1] if item.seq)

    async def _wait_for_work(self, timeout: float) -> None:
        self._new_events.clear()
        try:
            await asyncio.wait_for(self._new_events.wait(), timeout)
        except TimeoutError:
            pass

    def _route_batch(
        self, conn: Connection, config: CompiledConfig, rooms: dict[str, int], limit: int
    ) -> tuple[int, list[Item], int, float]:
        """Route the oldest unrouted events in this transaction; returns how many, the
        deliveries handed over in memory, the highest event seq read, and when the leases
        of the rows handed over end.

        On SQLite (one worker process), the first attempts of deliveries for connectors
        with room are handed to the delivery engine in memory, tracked per event
        (``InFlight``) and written only when every one of them has an outcome. The rest
        (and everything on PostgreSQL, where several workers share the queue) become
        delivery rows now; those for connectors with room are inserted already leased
        and handed over too, so no claim round trip is needed.
        """
        in_memory = self.services.db.is_sqlite
        rows, claimed = queue.claim_events(conn, self._claimed_upto, limit)
        if not rows:
            # None, or all claimed were routed by others meanwhile: then look again at once.
            return claimed, [], 0, 0.0
        loads = orjson.loads
        stored = [StoredEvent(r[0], r[1], r[2], r[3], loads(r[4])) for r in rows]
        now = time.time()
        routed = route_events(config, stored, now)
        if self.audiences is not None:
            # Tealium's order: event → visitor profile → enrichments → audiences →
            # audience-triggered actions; all in this same transaction.
            self.audiences.process(conn, config, stored, routed, now)
        if in_memory:
            handoff = self._plan_in_memory(conn, routed, stored, rooms, now)
        else:
            handoff = self._insert_deliveries(conn, routed.deliveries, stored, rooms, now)
            routed.counts.write(conn)
            if routed.traces:
                conn.execute(traces.insert(), [t.row(now) for t in routed.traces])
        self._observe(stored, now)
        return len(rows), handoff, rows[-1][0], now + self.services.settings.lease_seconds

    def _plan_in_memory(
        self,
        conn: Connection,
        routed: Routed,
        stored: list[StoredEvent],
        rooms: dict[str, int],
        now: float,
    ) -> list[Item]:
        room = dict(rooms)
        by_event: dict[int, list[dict[str, Any]]] = {}
        for row in routed.deliveries:
            by_event.setdefault(row["event_seq"], []).append(row)
        handoff: list[Item] = []
        now_rows: list[dict[str, Any]] = []
        now_routed: list[int] = []
        now_counts = CounterDelta()
        now_traces: list[TraceStep] = []
        for event in stored:
            rows = by_event.get(event.seq, [])
            visitor_stage = self.audiences is not None and any(r.get("data") for r in rows)
            fast_rows = []
            if not visitor_stage:
                for row in rows:
                    if room.get(row["connector_id"], 0) > 0:
                        room[row["connector_id"]] -= 1
                        fast_rows.append(row)
            tally = routed.tallies.get(event.seq, ())
            trace = routed.trace_of.get(event.seq)
            if not fast_rows:
                now_rows.extend(rows)
                now_routed.append(event.seq)
                for action_id, connector_id, name in tally:
                    now_counts.add(action_id, connector_id, event.profile_id, now, name)
                if trace is not None:
                    now_traces.append(trace)
                continue
            flight = InFlight(
                event.seq,
                event.profile_id,
                len(fast_rows),
                list(tally),
                [r for r in rows if r not in fast_rows] if len(rows) > len(fast_rows) else [],
                [trace] if trace is not None else [],
            )
            for row in fast_rows:
                handoff.append(
                    Item(
                        seq=0,
                        event_id=event.id,
                        action_id=row["action_id"],
                        connector_id=row["connector_id"],
                        profile_id=event.profile_id,
                        attempts=0,
                        received_at=event.received_at,
                        payload=event.payload,
                        inflight=flight,
                    )
                )
        if now_rows:
            self._insert_deliveries(conn, now_rows, stored, {}, now)
        fast.mark_routed(conn, now_routed)
        now_counts.write(conn)
        if now_traces:
            conn.execute(traces.insert(), [t.row(now) for t in now_traces])
        return handoff

    def _insert_deliveries(
        self,
        conn: Connection,
        rows: list[dict[str, Any]],
        stored: list[StoredEvent],
        rooms: dict[str, int],
        now: float,
    ) -> list[Item]:
        if not rows:
            return []
        room = dict(rooms)
        lease = now + self.services.settings.lease_seconds
        owner = self.engine.owner if self.engine is not None else None
        taken: list[dict[str, Any]] = []
        for row in rows:
            if room.get(row["connector_id"], 0) > 0 and owner is not None:
                room[row["connector_id"]] -= 1
                row["next_at"] = row["lease_until"] = lease
                row["lease_owner"] = owner
                taken.append(row)
            else:
                row["lease_owner"] = None
                self._to_wake.add(row["connector_id"])
                # Due now and leased to no one: wake the other workers to claim it.
                notify.later(conn, notify.DELIVERIES)
        queue.insert_deliveries(conn, rows)
        by_seq = {event.seq: event for event in stored}
        items = []
        for row in taken:
            event = by_seq[row["event_seq"]]
            items.append(
                Item(
                    seq=row["seq"],
                    event_id=row["event_id"],
                    action_id=row["action_id"],
                    connector_id=row["connector_id"],
                    profile_id=row["profile_id"],
                    attempts=0,
                    received_at=event.received_at,
                    payload=event.payload,
                    data=jsonutil.loads(row["data"]) if row.get("data") else None,
                )
            )
        return items

    # --- AudienceStream timers -----------------------------------------------------------

    async def _audience_loop(self) -> None:
        """End visits that timed out and fire delayed actions (see sluice.audiences)."""
        while True:
            stage = self.audiences
            if stage is None:
                return
            try:
                run = functools.partial(_run_timers, stage=stage, config=self.config)
                wake = await self.writer.run(run)
                if wake and self.engine is not None:
                    self.engine.wake(wake)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("AudienceStream timers failed; retrying")
            await asyncio.sleep(0 if stage.backlog else AUDIENCE_TIMERS_EVERY)

    # --- attribute discovery ------------------------------------------------------------

    def _observe(self, stored: list[StoredEvent], now: float) -> None:
        self.discovery.observe(stored, now)

    async def _observe_loop(self) -> None:
        while True:
            await asyncio.sleep(OBSERVE_EVERY)
            try:
                await self._flush_observations()
            except Exception:
                log.exception("recording discovered attributes failed")

    async def _flush_observations(self) -> None:
        observations = self.discovery.take()
        if observations:
            await self.writer.run(functools.partial(discovery.write, observations=observations))

    # --- operations -------------------------------------------------------------------

    def resume_connector(self, connector_id: str) -> None:
        if self.engine is not None:
            self.engine.resume(connector_id)

    def _in_flight(self) -> int:
        return len(self.engine.held) + self.engine.in_memory if self.engine else 0

    def queue_depth(self) -> int:
        return self.unrouted + (len(self.engine.held) if self.engine else 0)


def _run_timers(conn: Connection, stage: AudienceStage, config: CompiledConfig) -> set[str]:
    return stage.run_due(conn, config, time.time())
