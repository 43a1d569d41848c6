"""The AudienceStream stage of the pipeline: per event, and once a second for timers.

``process`` runs inside the router's transaction for each batch of events, right after
the event-sourced actions are routed: for every event with a ``tealium_visitor_id`` in
a profile that has visitor attributes or audiences, in the order the events were
received, it ends the visitor's visit if it timed out, applies the event to the visit
and the enrichments, evaluates the audiences and fires the audience-triggered actions.
Their deliveries and counters join the event's routing, so all of it commits together.

``run_due`` ends visits that timed out without a further event and fires delayed
actions. It takes a cluster-wide lease, so one process does it at a time.

**An event is applied once.** On SQLite an event whose first deliveries run from memory
is marked routed only when they finish; after a crash it is routed again. A profile
remembers the last event applied to it (``last_seq``; events are routed in order in
the single SQLite process), and an event at or below it is not applied again. On
PostgreSQL routing and marking happen in one transaction, so no event comes back.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from sqlalchemy import Connection, update

from sluice import metrics
from sluice.audiences.membership import CompiledAudience, compile_audiences, evaluate
from sluice.audiences.model import Visit, VisitorProfile
from sluice.audiences.rules import CompiledAttribute, Step, compile_attribute, enrich, steps_of
from sluice.audiences.store import Held, ProfileCache, ProfileStore
from sluice.audiences.triggers import Candidate, EventOutlet, consent_ok, fire
from sluice.audiences.visits import Effects, Job, VisitEndOutlet, due_jobs, due_visits, end_payload
from sluice.audiences.visits import limits as visit_limits
from sluice.engine.compiled import CompiledConfig, LiveAction, LiveProfile
from sluice.engine.consent import parse_event_categories
from sluice.engine.router import Routed, StoredEvent
from sluice.ids import new_event_id
from sluice.reporting.retention import take_lease
from sluice.settings import Settings
from sluice.storage.tables import visitors

log = logging.getLogger("sluice.audiences")

LEASE = "audiences-scheduler"
LEASE_SECONDS = 10.0
DUE_BATCH = 200


@dataclass
class ProfileRules:
    """One profile's AudienceStream definitions, compiled."""

    attributes: list[CompiledAttribute] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    visitor_names: frozenset[str] = frozenset()
    visit_names: frozenset[str] = frozenset()
    badges: frozenset[str] = frozenset()
    audiences: list[CompiledAudience] = field(default_factory=list)
    names: dict[str, str] = field(default_factory=dict)  # audience id -> name
    actions: dict[tuple[str, str], list[LiveAction]] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return bool(self.attributes or self.audiences)

    def candidates(self, audience_ids: list[str], trigger: str) -> list[Candidate]:
        found: list[Candidate] = []
        for audience_id in audience_ids:
            found.extend((a, audience_id) for a in self.actions.get((audience_id, trigger), ()))
        return found


def compile_profile(live: LiveProfile) -> ProfileRules:
    rules = ProfileRules()
    for definition in live.visitor_attributes:
        try:
            rules.attributes.append(compile_attribute(definition))
        except Exception:  # a stored definition must never take the runtime down
            log.exception("cannot compile the visitor attribute %s; skipped", definition["id"])
    rules.steps = steps_of(rules.attributes)
    rules.visitor_names = frozenset(a.name for a in rules.attributes if a.scope == "visitor")
    rules.visit_names = frozenset(a.name for a in rules.attributes if a.scope == "visit")
    rules.badges = frozenset(a.name for a in rules.attributes if a.type == "badge")
    rules.audiences = compile_audiences(live.audiences)
    rules.names = {a.id: a.name for a in rules.audiences}
    for action in live.audience_actions:
        key = (str(action.source.get("audience")), str(action.source.get("trigger")))
        rules.actions.setdefault(key, []).append(action)
    return rules


class AudienceStage:
    def __init__(
        self,
        *,
        max_bytes: int = 400_000,
        cache_bytes: int = 64 << 20,
        scale: float = 1.0,
        postgres: bool = False,
    ) -> None:
        self.max_bytes = max_bytes
        self.scale = scale
        self.postgres = postgres
        self.store = ProfileStore(ProfileCache(cache_bytes), postgres=postgres)
        self.backlog = False  # run_due left due work for the next round
        self._compiled: dict[str, tuple[CompiledConfig, ProfileRules]] = {}

    @classmethod
    def from_settings(cls, settings: Settings, *, postgres: bool) -> AudienceStage:
        return cls(
            max_bytes=settings.visitor_profile_max_bytes,
            cache_bytes=int(settings.visitor_cache_mb * (1 << 20)),
            scale=settings.visit_timeout_scale,
            postgres=postgres,
        )

    def rules(self, config: CompiledConfig, live: LiveProfile) -> ProfileRules:
        entry = self._compiled.get(live.id)
        if entry is None or entry[0] is not config:
            entry = self._compiled[live.id] = (config, compile_profile(live))
        return entry[1]

    # --- per batch of events ------------------------------------------------------------

    def process(
        self,
        conn: Connection,
        config: CompiledConfig,
        stored: list[StoredEvent],
        routed: Routed,
        now: float,
    ) -> None:
        groups: dict[str, list[tuple[StoredEvent, str]]] = {}
        for event in stored:
            visitor = event.payload.get("tealium_visitor_id")
            if visitor is None or visitor == "":
                continue
            live = config.profiles_by_id.get(event.profile_id)
            if live is None or not self.rules(config, live).active:
                continue
            groups.setdefault(live.id, []).append((event, str(visitor)[:200]))
        if not groups:
            return
        effects = Effects(now)
        for profile_id, items in groups.items():
            live = config.profiles_by_id[profile_id]
            rules = self.rules(config, live)
            held = self.store.load(conn, profile_id, [v for _, v in items], now)
            for entry in held.values():
                _prune(entry, rules)
            timeout, longest = visit_limits(live, self.scale)
            for event, visitor_id in items:
                entry = held[visitor_id]
                if self.postgres or event.seq > entry.profile.last_seq:
                    self._apply(conn, live, rules, entry, event, routed, effects, timeout, longest)
            self._save(conn, profile_id, held, timeout, longest, now)
        effects.write(conn)

    def _apply(
        self,
        conn: Connection,
        live: LiveProfile,
        rules: ProfileRules,
        entry: Held,
        event: StoredEvent,
        routed: Routed,
        effects: Effects,
        timeout: float,
        longest: float,
    ) -> None:
        profile, payload, at = entry.profile, event.payload, event.received_at
        if profile.visit is not None and at >= profile.visit.ends_at(timeout, longest):
            self._end_visit(
                conn, live, rules, entry, profile.visit.ends_at(timeout, longest), effects
            )
        entry.dirty = True
        before = profile.snapshot()
        new_visit = profile.visit is None
        if profile.visit is None:
            profile.visit = Visit(at, at)
        visit = profile.visit
        visit.last_event_at = max(visit.last_event_at, at)
        visit.event_count += 1
        if "consent_categories" in payload:
            granted = parse_event_categories(payload["consent_categories"])
            profile.consent = sorted(granted) if granted is not None else None
        enrich(rules.steps, profile, payload, at)
        changes = evaluate(profile, rules.audiences, rules.names, at)
        profile.updated_at = effects.now
        profile.last_seq = event.seq
        profile.over_size = False
        data = profile.dumps()
        if len(data) > self.max_bytes:
            profile.restore(before)
            profile.over_size = True
            entry.data = None
            metrics.PROFILE_OVER_SIZE.inc()
            log.warning(
                "the profile of visitor %r (%s/%s) would pass %d bytes: event %s left it unchanged",
                profile.visitor_id,
                live.account,
                live.profile,
                self.max_bytes,
                event.id,
            )
            self._trace(routed, event, profile, [], [], [], over_size=True)
            return
        entry.data = data
        candidates = rules.candidates(changes.joined, "joined")
        candidates += rules.candidates(changes.left, "left")
        if new_visit:
            candidates += rules.candidates(list(profile.audiences), "in_at_start_of_visit")
        outlet = EventOutlet(routed, event, effects.now)
        if fire(candidates, profile, live, outlet, lambda: profile.context(payload, rules.names)):
            entry.data = None  # a cooldown group was used: the JSON is behind
        self._trace(routed, event, profile, changes.joined, changes.left, outlet.fired)

    @staticmethod
    def _trace(
        routed: Routed,
        event: StoredEvent,
        profile: VisitorProfile,
        joined: list[str],
        left: list[str],
        fired: list[dict[str, str]],
        *,
        over_size: bool = False,
    ) -> None:
        step = routed.trace_of.get(event.seq)
        if step is not None:
            step.data["audiencestream"] = {
                "visitor_id": profile.visitor_id,
                "joined": joined,
                "left": left,
                "triggered": fired,
                "over_size_limit": over_size,
            }

    def _end_visit(
        self,
        conn: Connection,
        live: LiveProfile,
        rules: ProfileRules,
        entry: Held,
        ended: float,
        effects: Effects,
    ) -> None:
        """End the visit at ``ended``: audiences, end-of-visit actions, then close it."""
        profile, visit = entry.profile, entry.profile.visit
        assert visit is not None
        changes = evaluate(profile, rules.audiences, rules.names, ended)
        payload = end_payload(live, profile, visit, ended, effects.now)
        candidates = rules.candidates(changes.joined, "joined")
        candidates += rules.candidates(changes.left, "left")
        candidates += rules.candidates(list(profile.audiences), "in_at_end_of_visit")
        outlet = VisitEndOutlet(conn, effects, live, payload)
        fire(candidates, profile, live, outlet, lambda: profile.context(payload, rules.names))
        profile.visit = None
        profile.updated_at = effects.now
        entry.dirty, entry.data = True, None

    def _save(
        self,
        conn: Connection,
        profile_id: str,
        held: dict[str, Held],
        timeout: float,
        longest: float,
        now: float,
    ) -> None:
        for entry in held.values():
            if entry.dirty:
                visit = entry.profile.visit
                entry.visit_ends_at = visit.ends_at(timeout, longest) if visit else None
        self.store.save(conn, profile_id, held, now)

    # --- timers -------------------------------------------------------------------------

    def run_due(self, conn: Connection, config: CompiledConfig, now: float) -> set[str]:
        """End due visits and fire due delayed actions; the connectors to wake."""
        # One SQLite process does all the work; on PostgreSQL one process of the cluster
        # holds the lease (another takes over within LEASE_SECONDS when it dies).
        if self.postgres and not take_lease(conn, LEASE, LEASE_SECONDS):
            return set()
        effects = Effects(now)
        due = due_visits(conn, now, DUE_BATCH)
        by_profile: dict[str, list[str]] = {}
        for profile_id, visitor_id in due:
            by_profile.setdefault(profile_id, []).append(visitor_id)
        for profile_id, visitor_ids in by_profile.items():
            live = config.profiles_by_id.get(profile_id)
            if live is None:  # the profile is gone: nothing to end
                conn.execute(
                    update(visitors)
                    .where(visitors.c.profile_id == profile_id)
                    .values(visit_ends_at=None)
                )
                continue
            rules = self.rules(config, live)
            held = self.store.load(conn, profile_id, visitor_ids, now, create=False)
            timeout, longest = visit_limits(live, self.scale)
            for entry in held.values():
                if entry.version is None:
                    continue  # erased meanwhile
                visit = entry.profile.visit
                entry.dirty = True  # at least visit_ends_at is rewritten
                if visit is not None and visit.ends_at(timeout, longest) <= now:
                    ended = visit.ends_at(timeout, longest)
                    self._end_visit(conn, live, rules, entry, ended, effects)
            self._save(conn, profile_id, held, timeout, longest, now)
        jobs = due_jobs(conn, now, DUE_BATCH, postgres=self.postgres)
        for job in jobs:
            self._fire_job(conn, config, job, effects)
        effects.write(conn)
        self.backlog = len(due) >= DUE_BATCH or len(jobs) >= DUE_BATCH
        return effects.wake

    def _fire_job(
        self, conn: Connection, config: CompiledConfig, job: Job, effects: Effects
    ) -> None:
        """A delayed end-of-visit action: fires if the visitor is still in the audience."""
        payload = job.payload
        action_id, connector_id = str(payload["action_id"]), str(payload["connector_id"])
        audience_id = str(payload["audience_id"])
        live = config.profiles_by_id.get(job.profile_id)
        if live is None:
            return
        held = self.store.load(conn, job.profile_id, [job.visitor_id], effects.now, create=False)
        entry = held[job.visitor_id]
        action = config.actions.get(action_id)
        if action is None or not action.enabled or action.audience_id != audience_id:
            outcome = "dropped"  # switched off or changed meanwhile
        elif entry.version is None or audience_id not in entry.profile.audiences:
            outcome = "dropped"  # expired: no longer in the audience
        elif not consent_ok(action, entry.profile, live):
            outcome = "filtered_consent"
        else:
            outcome = ""
            event_payload = {**payload["event"], "event_id": new_event_id()}
            event = effects.store_event(conn, job.profile_id, event_payload)
            effects.deliver(event, action, str(payload["data"]))
        if outcome:
            effects.count(action_id, connector_id, job.profile_id, outcome)
        self.store.save(conn, job.profile_id, held, effects.now)


def _prune(entry: Held, rules: ProfileRules) -> None:
    """Drop the values of attributes (and badges) that no longer exist."""
    profile = entry.profile
    stale = [n for n in profile.attributes if n not in rules.visitor_names]
    if stale:
        profile.attributes = {
            k: v for k, v in profile.attributes.items() if k in rules.visitor_names
        }
    visit = profile.visit
    if visit is not None and any(n not in rules.visit_names for n in visit.attributes):
        visit.attributes = {k: v for k, v in visit.attributes.items() if k in rules.visit_names}
        stale.append("visit")
    if any(b not in rules.badges for b in profile.badges):
        profile.badges = [b for b in profile.badges if b in rules.badges]
        stale.append("badges")
    if stale:
        entry.dirty, entry.data = True, None
