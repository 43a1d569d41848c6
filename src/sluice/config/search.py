"""Spotlight search (SPEC §2.2): connector types, connectors, actions, feeds and audiences.

It answers on every keystroke, so each profile's names and ids are kept in an in-memory
index, rebuilt only when its fingerprint moves: the configuration revision (publishes,
feeds, audiences) plus the count and latest ``updated_at`` of the profile's connectors,
actions, feeds and audiences (draft edits do not bump the revision). The fingerprint is
one small query, so every process sees another's edits at once.

Ranking: the title (or id) starting with the query, then every query word starting a word
of the title, then a substring, then fuzzy matches (the letters in order, or one typo);
within a rank, shorter titles first. At most 20 results.
"""

from __future__ import annotations

import re
import string
import threading
from array import array
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, func, select

from sluice.config import revision
from sluice.config.event_feeds import ALL_EVENTS_ID, ALL_EVENTS_NAME
from sluice.config.profiles import Profile
from sluice.connectors.registry import Registry
from sluice.storage.db import Database
from sluice.storage.tables import actions, audiences, connectors, event_feeds

LIMIT = 20
KIND_ORDER = {"connector": 0, "action": 1, "connector_type": 2, "event_feed": 3, "audience": 4}
_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_ALPHABET = string.ascii_lowercase + string.digits + " _-"


_SPLIT = re.compile(r"[0-9a-z]+")


def _words(title: str) -> str:
    """The title's words (camelCase split too), each preceded by a space: ``" " + token in
    words`` is then a word-prefix test in one C-level substring search."""
    lower = title.lower()
    found = _SPLIT.findall(lower)
    if lower != title:
        found.extend(w.lower() for w in _WORD.findall(title))
    return " " + " ".join(dict.fromkeys(found))


class Entry:
    """One result that can be found: its JSON plus the forms matched against."""

    __slots__ = ("id", "keywords", "kind", "lower", "options", "subtitle", "title", "url", "words")

    def __init__(
        self,
        kind: str,
        id: str,
        title: str,
        subtitle: str,
        url: str,
        options: tuple[tuple[str, str], ...] = (),
        keywords: str = "",
    ) -> None:
        self.kind = kind
        self.id = id
        self.title = title
        self.subtitle = subtitle
        self.url = url
        self.options = options
        self.keywords = keywords  # more text matched as a substring (a type's action names)
        self.lower = title.lower()
        self.words = _words(title)

    def id_matches(self, q: str) -> bool:
        """A pasted id; catalog ids are words (``google_analytics_4``) and match by prefix."""
        if self.id == q:
            return True
        return self.id.startswith(q) and (self.kind == "connector_type" or len(q) >= 8)

    def as_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "id": self.id,
            "title": self.title,
            "subtitle": self.subtitle,
            "url": self.url,
            "options": [{"title": t, "url": u} for t, u in self.options],
        }


def _edits(word: str) -> set[str]:
    """Every string one deletion, substitution, insertion or transposition away."""
    splits = [(word[:i], word[i:]) for i in range(len(word) + 1)]
    found = {a + b[1:] for a, b in splits if b}
    found |= {a + b[1] + b[0] + b[2:] for a, b in splits if len(b) > 1}
    found |= {a + c + b[1:] for a, b in splits if b for c in _ALPHABET}
    found |= {a + c + b for a, b in splits for c in _ALPHABET}
    return found


class SearchIndex:
    """Entries kept in their tie-break order (shorter titles first, then by kind and name),
    so a match is ranked by a plain integer: ``tier * len(entries) + position``. Integers
    are not tracked by the garbage collector, which keeps each keystroke's garbage cheap."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = sorted(entries, key=lambda e: (len(e.title), KIND_ORDER[e.kind], e.lower))
        self._rows = [(e.lower, e.words, e.keywords) for e in self.entries]
        self._by_id = {e.id: p for p, e in enumerate(self.entries)}
        self._catalog_positions = [
            p for p, e in enumerate(self.entries) if e.kind == "connector_type"
        ]
        self._prefixes: dict[int, dict[str, array[int]]] = {}
        self._lock = threading.Lock()

    def _prefix_map(self, length: int) -> dict[str, array[int]]:
        """Word prefixes of one length -> entries, built on the first fuzzy query needing it."""
        with self._lock:
            built = self._prefixes.get(length)
            if built is None:
                built = {}
                for position, (_lower, words, _keywords) in enumerate(self._rows):
                    for word in words.split():
                        if len(word) >= length:
                            key = word[:length]
                            found = built.get(key)
                            if found is None:
                                built[key] = found = array("I")
                            found.append(position)
                self._prefixes[length] = built
            return built

    def _id_matches(self, q: str) -> set[int]:
        """Positions whose id matches: a pasted id, or a catalog id's beginning."""
        found = set()
        exact = self._by_id.get(q)
        if exact is not None:
            found.add(exact)
        candidates = range(len(self.entries)) if len(q) >= 8 else self._catalog_positions
        found.update(p for p in candidates if self.entries[p].id_matches(q))
        return found

    def search(self, query: str, limit: int = LIMIT) -> list[tuple[int, Entry]]:
        """The best ``limit`` matches as ``(rank, entry)``, best first."""
        q = " ".join(query.lower().split())
        if not q:
            return []
        tokens = [" " + t for t in q.split()]
        size = len(self.entries)
        tiers: tuple[list[int], list[int], list[int]] = ([], [], [])
        for position, (lower, words, keywords) in enumerate(self._rows):
            if lower.startswith(q):
                tiers[0].append(position)
            elif all(t in words for t in tokens):
                tiers[1].append(position)
            elif q in lower or (keywords and q in keywords):
                tiers[2].append(position)
        by_id = self._id_matches(q).difference(tiers[0])
        if by_id:
            for tier in tiers[1:]:
                tier[:] = [p for p in tier if p not in by_id]
            tiers[0].extend(by_id)
            tiers[0].sort()
        ranked = [tier * size + p for tier in range(3) for p in tiers[tier][:limit]]
        if len(ranked) < limit and len(q) >= 3 and " " not in q:
            matched = {r % size for r in ranked}
            ranked.extend(sorted(self._fuzzy(q, matched)))
        return [(rank, self.entries[rank % size]) for rank in ranked[:limit]]

    def _fuzzy(self, q: str, matched: set[int]) -> list[int]:
        """Ranks (from tier 3 on) of entries with one typo in a word's beginning, or with
        the query's letters in order, as few apart as possible ("slck" -> "Slack")."""
        size = len(self.entries)
        spread: dict[int, int] = {}
        variants = _edits(q)
        for length in {len(q) - 1, len(q), len(q) + 1}:
            prefixes = self._prefix_map(length)
            for variant in variants:
                if len(variant) == length:
                    for position in prefixes.get(variant, ()):
                        if position not in matched:
                            spread[position] = 0
        pattern = re.compile(".*?".join(re.escape(c) for c in q))
        for position, (lower, _words, _keywords) in enumerate(self._rows):
            if position in matched or position in spread:
                continue
            match = pattern.search(lower)
            if match is not None:
                spread[position] = 1 + match.end() - match.start() - len(q)
        return [(3 + gap) * size + position for position, gap in spread.items()]


# --- building the indexes ------------------------------------------------------------


def _shorten(text: str, limit: int = 90) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rsplit(" ", 1)[0] + "…"


def catalog_entries(registry: Registry) -> list[Entry]:
    return [
        Entry(
            kind="connector_type",
            id=ct.id,
            title=ct.name,
            subtitle="Connector type · " + _shorten(ct.description),
            url=f"/catalog/{ct.id}",
            options=(("Add connector", f"/connectors/new?type={ct.id}"),),
            keywords=" ".join(a.name.lower() for a in ct.actions),
        )
        for ct in registry.all()
    ]


def profile_entries(conn: Connection, registry: Registry, profile: Profile) -> list[Entry]:
    base = f"/p/{profile.account}/{profile.profile}"
    entries: list[Entry] = []
    names: dict[str, str] = {}
    type_names: dict[str, str] = {}
    rows = conn.execute(
        select(connectors.c.id, connectors.c.name, connectors.c.type, connectors.c.enabled).where(
            connectors.c.profile_id == profile.id
        )
    )
    for row in rows:
        ct = registry.get(row.type)
        type_names[row.id] = row.type
        names[row.id] = row.name
        url = f"{base}/connectors/{row.id}"
        entries.append(
            Entry(
                kind="connector",
                id=row.id,
                title=row.name,
                subtitle=f"{ct.name if ct else row.type} connector · "
                + ("active" if row.enabled else "inactive"),
                url=url,
                options=(
                    ("Add action", f"{url}/actions/new"),
                    ("Configuration", f"{url}#configuration"),
                    ("Reporting", f"{url}/reports"),
                    ("Versions", f"{url}/versions"),
                ),
            )
        )
    rows = conn.execute(
        select(actions.c.id, actions.c.name, actions.c.type, actions.c.connector_id).where(
            actions.c.profile_id == profile.id
        )
    )
    for row in rows:
        ct = registry.get(type_names.get(row.connector_id, ""))
        action_type = ct.action(row.type) if ct is not None else None
        entries.append(
            Entry(
                kind="action",
                id=row.id,
                title=row.name,
                subtitle=f"{action_type.name if action_type else row.type} · "
                f"{names.get(row.connector_id, '')}",
                url=f"{base}/connectors/{row.connector_id}/actions/{row.id}",
            )
        )
    feeds = [(ALL_EVENTS_ID, ALL_EVENTS_NAME)]
    feeds += [
        (r.id, r.name)
        for r in conn.execute(
            select(event_feeds.c.id, event_feeds.c.name).where(
                event_feeds.c.profile_id == profile.id
            )
        )
    ]
    entries.extend(
        Entry("event_feed", fid, name, "Event feed", f"{base}/event-feeds/{fid}")
        for fid, name in feeds
    )
    rows = conn.execute(
        select(audiences.c.id, audiences.c.name).where(audiences.c.profile_id == profile.id)
    )
    entries.extend(
        Entry("audience", r.id, r.name, "Audience", f"{base}/audiences/{r.id}") for r in rows
    )
    return entries


def fingerprint(conn: Connection, profile_id: str) -> tuple[Any, ...]:
    """Moves whenever anything the index shows may have changed."""
    parts: list[Any] = []
    for table in (connectors, actions, event_feeds, audiences):
        where = table.c.profile_id == profile_id
        parts.append(select(func.count()).select_from(table).where(where).scalar_subquery())
        parts.append(select(func.max(table.c.updated_at)).where(where).scalar_subquery())
    row = conn.execute(select(*parts)).one()
    return (revision.current(conn), *row)


class SpotlightCache:
    """Indexes per profile, shared by the requests of one process (kept in ``Services``)."""

    MAX_PROFILES = 256

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._profiles: dict[str, tuple[tuple[Any, ...], SearchIndex]] = {}
        self._catalog: tuple[Registry, SearchIndex] | None = None

    def catalog(self, registry: Registry) -> SearchIndex:
        cached = self._catalog
        if cached is None or cached[0] is not registry:
            cached = (registry, SearchIndex(catalog_entries(registry)))
            self._catalog = cached
        return cached[1]

    def profile(self, db: Database, registry: Registry, profile: Profile) -> SearchIndex:
        with db.read() as conn:
            key = fingerprint(conn, profile.id)
            cached = self._profiles.get(profile.id)
            if cached is not None and cached[0] == key:
                return cached[1]
            entries = profile_entries(conn, registry, profile)
            index = SearchIndex([*entries, *self.catalog(registry).entries])
        with self._lock:
            self._profiles.pop(profile.id, None)
            while len(self._profiles) >= self.MAX_PROFILES:
                self._profiles.pop(next(iter(self._profiles)))
            self._profiles[profile.id] = (key, index)
        return index


def cache_of(services_extras: dict[str, Any]) -> SpotlightCache:
    """The process's cache, kept with its services."""
    cache = services_extras.get("spotlight")
    if not isinstance(cache, SpotlightCache):
        cache = services_extras["spotlight"] = SpotlightCache()
    return cache


def search(
    db: Database,
    registry: Registry,
    query: str,
    profile: Profile | None = None,
    *,
    cache: SpotlightCache,
    limit: int = LIMIT,
) -> list[dict[str, Any]]:
    """The best matches among the catalog and, with a profile, its objects."""
    index = cache.catalog(registry) if profile is None else cache.profile(db, registry, profile)
    return [entry.as_json() for _, entry in index.search(query, limit)]
