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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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


def _words(*texts: str) -> str:
    """A line of the texts' words, each preceded by a space: ``" " + token in line``
    is then a word-prefix test in one C-level substring search."""
    found: list[str] = []
    for text in texts:
        found.extend(w for w in re.split(r"[^0-9a-z]+", text.lower()) if w)
        found.extend(w.lower() for w in _WORD.findall(text))
    return " " + " ".join(dict.fromkeys(found))


@dataclass(frozen=True)
class Entry:
    kind: str
    id: str
    title: str
    subtitle: str
    url: str
    options: tuple[tuple[str, str], ...] = ()
    keywords: str = ""  # more text matched as a substring (a type's action names)
    lower: str = field(init=False)
    words: str = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "lower", self.title.lower())
        object.__setattr__(self, "words", _words(self.title))

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
    """The entries of one profile (or the catalog alone), searchable by prefix and fuzzily."""

    def __init__(self, entries: Iterable[Entry]) -> None:
        self.entries = list(entries)
        self._prefixes: dict[int, dict[str, list[int]]] = {}
        self._lock = threading.Lock()

    def _prefix_map(self, length: int) -> dict[str, list[int]]:
        """Word prefixes of one length -> entries, built on the first fuzzy query needing it."""
        with self._lock:
            built = self._prefixes.get(length)
            if built is None:
                built = {}
                for index, entry in enumerate(self.entries):
                    for word in entry.words.split():
                        if len(word) >= length:
                            built.setdefault(word[:length], []).append(index)
                self._prefixes[length] = built
            return built

    def search(self, query: str, limit: int = LIMIT) -> list[tuple[tuple[Any, ...], Entry]]:
        q = " ".join(query.lower().split())
        if not q:
            return []
        tokens = [" " + t for t in q.split()]
        ranked: list[tuple[tuple[Any, ...], Entry]] = []
        seen: set[int] = set()
        for index, entry in enumerate(self.entries):
            if entry.lower.startswith(q) or entry.id_matches(q):
                rank = 0
            elif all(t in entry.words for t in tokens):
                rank = 1
            elif q in entry.lower or (entry.keywords and q in entry.keywords):
                rank = 2
            else:
                continue
            seen.add(index)
            ranked.append(((rank, 0, len(entry.title), KIND_ORDER[entry.kind], entry.lower), entry))
        if len(ranked) < limit and len(q) >= 3 and " " not in q:
            ranked.extend(self._fuzzy(q, seen))
        ranked.sort(key=lambda pair: pair[0])
        return ranked[:limit]

    def _fuzzy(self, q: str, seen: set[int]) -> list[tuple[tuple[Any, ...], Entry]]:
        found: dict[int, int] = {}
        # One typo in a word's beginning: look the query's edits up among word prefixes.
        for length in {len(q) - 1, len(q), len(q) + 1}:
            prefixes = self._prefix_map(length)
            for variant in _edits(q):
                if len(variant) == length:
                    for index in prefixes.get(variant, ()):
                        if index not in seen:
                            found[index] = 1
        # The letters in order, as few apart as possible ("slck" -> "Slack").
        pattern = re.compile(".*?".join(re.escape(c) for c in q))
        for index, entry in enumerate(self.entries):
            if index in seen or index in found:
                continue
            match = pattern.search(entry.lower)
            if match is not None:
                found[index] = 2 + (match.end() - match.start() - len(q))
        return [
            (
                (
                    3,
                    spread,
                    len(self.entries[i].title),
                    KIND_ORDER[self.entries[i].kind],
                    self.entries[i].lower,
                ),
                self.entries[i],
            )
            for i, spread in found.items()
        ]


# --- building the indexes ------------------------------------------------------------


def catalog_entries(registry: Registry) -> list[Entry]:
    return [
        Entry(
            kind="connector_type",
            id=ct.id,
            title=ct.name,
            subtitle="Connector type · " + ct.description,
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
    """Indexes per profile, shared by the requests of one process."""

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
            index = SearchIndex(profile_entries(conn, registry, profile))
        with self._lock:
            self._profiles[profile.id] = (key, index)
        return index


CACHE = SpotlightCache()


def search(
    db: Database,
    registry: Registry,
    query: str,
    profile: Profile | None = None,
    *,
    cache: SpotlightCache = CACHE,
    limit: int = LIMIT,
) -> list[dict[str, Any]]:
    """The best matches among the catalog and, with a profile, its objects."""
    indexes: Sequence[SearchIndex] = [cache.catalog(registry)]
    if profile is not None:
        indexes = [*indexes, cache.profile(db, registry, profile)]
    ranked = [pair for index in indexes for pair in index.search(query, limit)]
    ranked.sort(key=lambda pair: pair[0])
    return [entry.as_json() for _, entry in ranked[:limit]]
