"""The delivery engine: claims due deliveries, runs them per connector, records outcomes.

Claiming moves a delivery's ``next_at`` to the end of a lease (60 s, renewed every 20 s
while the work is held) and marks the row with this process's owner id, so a process
that dies loses nothing: its deliveries become due again when the lease runs out. One
that only stalled finds, when it wakes, that the rows taken over meanwhile are no longer
its own: renewing them, releasing them and recording their outcomes all check the owner
(see ``lease.py``). Outcomes are buffered for a few milliseconds and written in one
transaction (see ``outcomes.py``).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import Connection, select, update

from sluice import jsonutil
from sluice.delivery import lease
from sluice.delivery.health import HealthState
from sluice.delivery.outcomes import Item, Outcomes
from sluice.delivery.runner import ConnectorRunner
from sluice.delivery.transport import Transport
from sluice.engine.compiled import CompiledConfig
from sluice.storage import fast
from sluice.storage.tables import connector_health, deliveries
from sluice.storage.writer import Writer

log = logging.getLogger("sluice.delivery")

LEASE_SECONDS = 60.0
RENEW_EVERY = 20.0
FLUSH_EVERY = 0.05
CLAIM_LIMIT = 1000
IDLE_POLL_SECONDS = 5.0


class DeliveryEngine:
    def __init__(
        self,
        writer: Writer,
        transport: Transport,
        get_config: Callable[[], CompiledConfig],
        *,
        postgres: bool = False,
        lease_seconds: float = LEASE_SECONDS,
        owner: str | None = None,
    ) -> None:
        self.writer = writer
        self.transport = transport
        self._get_config = get_config
        self.postgres = postgres
        self.lease_seconds = lease_seconds
        # Written into every row this process leases; one per process (tests run several).
        self.owner = owner or lease.process_owner()
        self.runners: dict[str, ConnectorRunner] = {}
        self.outcomes = Outcomes(self.owner)
        # Rows whose loss the renewal already reported, so their outcome is not counted
        # as lost a second time.
        self._reported_lost: set[int] = set()
        self.held: set[int] = set()  # claimed rows, whose leases we renew
        self.in_memory = 0  # first attempts of in-flight events (no rows)
        # Every row held is leased to this process at least until then.
        self.leases_good_until = time.time() + lease_seconds
        self._renewing = asyncio.Lock()
        self.draining = False
        self._wake = asyncio.Event()
        self._flush_needed = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._health_writes: dict[str, HealthState] = {}
        # Set when a connector's queue has room again, so the router routes more at once.
        self.room_available = asyncio.Event()

    @property
    def config(self) -> CompiledConfig:
        return self._get_config()

    # --- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        pending = await self.writer.run(_connectors_with_work)
        for connector_id in set(self.config.connectors) | set(pending):
            self.runner(connector_id)
        self._tasks = [
            asyncio.create_task(self._dispatch_loop()),
            asyncio.create_task(self._flush_loop()),
            asyncio.create_task(self._renew_loop()),
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Finish what is in flight for up to ``grace`` seconds; the rest stays leased."""
        self.draining = True
        for runner in self.runners.values():
            runner.flush_batches()
        deadline = time.monotonic() + grace
        while self._sending() and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.05)
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await asyncio.gather(*(r.stop() for r in self.runners.values()), return_exceptions=True)
        await self._flush()
        if self.held:
            # Hand the unfinished work back at once rather than at the lease's end.
            held = list(self.held)
            release = functools.partial(lease.release, seqs=held, owner=self.owner, now=time.time())
            await self.writer.run(release)
            self.held.clear()

    def _sending(self) -> bool:
        """Whether work in hand may still finish: a paused connector's cannot, so stopping
        does not wait for it (its rows are handed back, its in-memory events re-routed)."""
        return any(r.held and r.health.may_send_soon() for r in self.runners.values())

    def runner(self, connector_id: str) -> ConnectorRunner:
        runner = self.runners.get(connector_id)
        if runner is None:
            runner = self.runners[connector_id] = ConnectorRunner(self, connector_id)
            runner.start()
        return runner

    def config_changed(self) -> None:
        for connector_id in self.config.connectors:
            self.runner(connector_id).reconfigure()
        self.wake_all()

    def rooms(self) -> dict[str, int]:
        """How many more deliveries each live connector's queue takes now."""
        return {cid: self.runner(cid).room() for cid in self.config.connectors}

    def hungry(self) -> bool:
        """Whether some live connector's queue has a quarter or more free."""
        return any(self.runner(cid).hungry() for cid in self.config.connectors)

    def adopt(self, items: list[Item], leased_until: float = 0.0) -> None:
        """Take deliveries the router inserted already leased to this process (until
        ``leased_until``, for those that are rows)."""
        self._leased(leased_until)
        by_connector: dict[str, list[Item]] = {}
        for item in items:
            by_connector.setdefault(item.connector_id, []).append(item)
            if item.seq:
                self.held.add(item.seq)
            else:
                self.in_memory += 1
        for connector_id, group in by_connector.items():
            self.runner(connector_id).offer(group)

    def wake(self, connector_ids: set[str]) -> None:
        for connector_id in connector_ids:
            self.runner(connector_id).wake_at = 0.0
        self._wake.set()

    def _wake_for(self, due: dict[str, float]) -> None:
        """Rows just written (retries, first attempts carried on as rows) are claimable:
        have their connectors look when the earliest falls due, not at their next poll."""
        woken = False
        for connector_id, at in due.items():
            runner = self.runners.get(connector_id)
            if runner is not None and at < runner.wake_at:
                runner.wake_at = at
                woken = True
        if woken:
            self._wake.set()

    def wake_all(self) -> None:
        for runner in self.runners.values():
            runner.wake_at = 0.0
        self._wake.set()

    def finished(self, items: list[Item]) -> None:
        runner = None
        for item in items:
            if item.seq:
                self.held.discard(item.seq)
            else:
                self.in_memory -= 1
            runner = self.runners.get(item.connector_id)
            if runner is not None:
                runner.held -= 1
        if runner is not None:
            if not self.room_available.is_set() and runner.hungry():
                self.room_available.set()
            if runner.starved:
                # It has rows waiting for room: claim them now that there is some.
                runner.starved = False
                self._wake.set()
        self._flush_needed.set()

    def health_changed(self, connector_id: str, state: HealthState) -> None:
        self._health_writes[connector_id] = state
        self._flush_needed.set()

    def resume(self, connector_id: str) -> None:
        runner = self.runner(connector_id)
        runner.health.resume()
        runner.wake_at = 0.0
        self._wake.set()

    # --- loops ------------------------------------------------------------------------

    async def _dispatch_loop(self) -> None:
        while True:
            now = time.time()
            wanted: list[tuple[str, int]] = []
            soonest = now + 1.0
            for connector_id, runner in self.runners.items():
                if self.draining:
                    break
                if runner.wake_at <= now:
                    room = runner.room()
                    if room > 0:
                        wanted.append((connector_id, min(room, CLAIM_LIMIT)))
                    else:
                        runner.starved = True
                elif runner.wake_at < soonest:
                    soonest = runner.wake_at
            if wanted:
                claim = functools.partial(
                    _claim,
                    wanted=wanted,
                    now=now,
                    postgres=self.postgres,
                    until=now + self.lease_seconds,
                    owner=self.owner,
                )
                try:
                    claimed = await self.writer.run(claim, if_cancelled=self._hand_back)
                except Exception:
                    log.exception("claiming deliveries failed")
                    await asyncio.sleep(1.0)
                    continue
                for connector_id, (items, next_due) in claimed.items():
                    runner = self.runner(connector_id)
                    if items:
                        self._leased(now + self.lease_seconds)
                        self.held.update(i.seq for i in items)
                        runner.offer(items)
                    requested = dict(wanted)[connector_id]
                    if len(items) >= requested:
                        runner.wake_at = 0.0
                    else:
                        # Look again at the next due row, and at least every second
                        # while it has rows (retries recorded since this claim, or by
                        # other processes, are not in ``next_due``); a connector with
                        # no rows at all is woken by whoever adds some, so it is only
                        # polled every few seconds as a fallback.
                        if next_due is None:
                            runner.wake_at = now + IDLE_POLL_SECONDS
                        else:
                            runner.wake_at = min(next_due, now + 1.0)
                if any(len(items) for items, _ in claimed.values()):
                    continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), max(0.005, min(soonest - now, 1.0)))
            except TimeoutError:
                pass

    def _hand_back(self, claimed: dict[str, tuple[list[Item], float | None]]) -> None:
        # Stopped while claiming: release those rows with the rest at the end of stop().
        self.held.update(item.seq for items, _ in claimed.values() for item in items)

    async def _flush_loop(self) -> None:
        while True:
            await self._flush_needed.wait()
            await asyncio.sleep(FLUSH_EVERY)
            self._flush_needed.clear()
            try:
                await self._flush()
            except Exception:
                log.exception("recording delivery outcomes failed; retrying")
                self._flush_needed.set()
                await asyncio.sleep(1.0)

    async def _flush(self) -> None:
        outcomes, self.outcomes = self.outcomes, Outcomes(self.owner)
        health, self._health_writes = self._health_writes, {}
        if not len(outcomes) and not outcomes.errors and not health and not outcomes.counts:
            return
        now = time.time()

        def write(conn: Connection) -> list[int]:
            lost = outcomes.write(conn, now)
            for connector_id, state in health.items():
                _write_health(conn, connector_id, state, now)
            return lost

        try:
            lost = await self.writer.run(write, weight=max(1, len(outcomes)))
        except Exception:
            # Keep them for the next try: an outcome must never be lost.
            outcomes.merge(self.outcomes)
            self.outcomes = outcomes
            self._health_writes = {**health, **self._health_writes}
            raise
        self._wake_for(outcomes.due)
        if lost:
            reported = self._reported_lost
            lease.lost([seq for seq in lost if seq not in reported], "outcome discarded")
            reported.difference_update(lost)

    async def _renew_loop(self) -> None:
        while True:
            await asyncio.sleep(self.lease_seconds * RENEW_EVERY / LEASE_SECONDS)
            try:
                await self.renew_leases()
            except Exception:
                log.exception("renewing delivery leases failed")

    def _leased(self, until: float) -> None:
        # Rows just taken whose lease ends before the others' (this process stalled
        # while taking them, so it may have ended already) are checked before sending.
        if until:
            self.leases_good_until = min(self.leases_good_until, until)

    def _leases_stale(self) -> bool:
        return time.time() > self.leases_good_until - self.lease_seconds / 3

    async def renew_leases(self, *, if_stale: bool = False) -> None:
        """Extend the leases of every row held; forget the rows whose lease was lost."""
        async with self._renewing:
            if if_stale and not self._leases_stale():
                return  # renewed while this one waited
            until = time.time() + self.lease_seconds
            held = list(self.held)
            if held:
                renew = functools.partial(lease.renew, seqs=held, until=until, owner=self.owner)
                lost = await self.writer.run(renew)
                if lost:
                    self._forget(lost)
            self.leases_good_until = until

    async def leases_checked(self) -> bool:
        """Before sending rows: True when their leases are surely still this process's.

        Otherwise (this process stalled past its renewals: a long pause, a frozen VM,
        ``SIGSTOP``) renew them first, forgetting the rows another process took over
        meanwhile so they are not sent a second time, and return False: the caller drops
        the rows no longer held. Should renewing fail, the rows are sent anyway; their
        outcomes are still checked against the owner when written.
        """
        if not self.postgres or not self._leases_stale():
            return True
        try:
            await self.renew_leases(if_stale=True)
        except Exception:
            log.exception("renewing delivery leases failed")
        return False

    def _forget(self, lost: list[int]) -> None:
        # Another process holds them now: stop renewing, waiting for and sending them.
        self.held.difference_update(lost)
        self._reported_lost.update(lost)
        lease.lost(lost, "renewal refused")
        gone = set(lost)
        for runner in self.runners.values():
            runner.forget(gone)


# --- SQL ------------------------------------------------------------------------------


def _connectors_with_work(conn: Connection) -> list[str]:
    return [r[0] for r in conn.execute(select(deliveries.c.connector_id).distinct())]


_CLAIM = (
    "SELECT d.seq, d.event_id, d.action_id, d.profile_id, d.attempts, d.data,"
    " e.payload, e.received_at"
    " FROM deliveries d JOIN events e ON e.seq = d.event_seq"
    " WHERE d.connector_id = ? AND d.next_at <= ? ORDER BY d.next_at LIMIT ?"
)


def _claim(
    conn: Connection,
    wanted: list[tuple[str, int]],
    now: float,
    postgres: bool,
    until: float,
    owner: str,
) -> dict[str, tuple[list[Item], float | None]]:
    result: dict[str, tuple[list[Item], float | None]] = {}
    claim = _CLAIM + (" FOR UPDATE OF d SKIP LOCKED" if postgres else "")
    loads = jsonutil.loads
    for connector_id, limit in wanted:
        rows = fast.fetchall(conn, claim, (connector_id, now, limit))
        items = [
            Item(
                seq=seq,
                event_id=event_id,
                action_id=action_id,
                connector_id=connector_id,
                profile_id=profile_id,
                attempts=attempts,
                received_at=received_at,
                payload=loads(payload),
                data=loads(data) if data else None,
            )
            for seq, event_id, action_id, profile_id, attempts, data, payload, received_at in rows
        ]
        if items:
            lease.take(conn, [i.seq for i in items], until, owner)
        next_due = None
        if len(items) < limit:
            found = fast.fetchall(
                conn, "SELECT min(next_at) FROM deliveries WHERE connector_id = ?", (connector_id,)
            )
            next_due = found[0][0] if found else None
        result[connector_id] = (items, next_due)
    return result


def _write_health(conn: Connection, connector_id: str, state: HealthState, now: float) -> None:
    values: dict[str, Any] = {
        "state": state.state,
        "since": state.since or now,
        "reason": state.reason,
        "pauses": state.pauses,
        "updated_at": now,
    }
    updated = conn.execute(
        update(connector_health)
        .where(connector_health.c.connector_id == connector_id)
        .values(**values)
    )
    if updated.rowcount == 0:
        conn.execute(connector_health.insert().values(connector_id=connector_id, **values))
