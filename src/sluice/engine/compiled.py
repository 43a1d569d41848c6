"""The compiled view of what is live: built from published versions, read by the hot path.

Every event is routed against this in-memory view; the hot path never queries the
configuration tables. It is rebuilt (in a worker thread) whenever the configuration
revision in the database moves: on publish in any process, or when a profile, data
source or feed changes.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, select

from sluice import jsonutil
from sluice.config import revision
from sluice.config.profiles import DEFAULT_SETTINGS
from sluice.config.published import PublishedConnector, load_published
from sluice.connectors.definition import ActionType, Batching, BuildContext, ConnectorType
from sluice.connectors.registry import Registry
from sluice.crypto import SecretBox
from sluice.engine.conditions import compile_conditions
from sluice.engine.consent import normalize_category
from sluice.engine.mapping import CompiledMappings, compile_mappings
from sluice.engine.templates import TemplateEngine
from sluice.storage.tables import (
    audiences,
    data_sources,
    event_feeds,
    profiles,
    visitor_attributes,
)

log = logging.getLogger("sluice.engine")

ALL_EVENTS = "all_events"


def _always(_event: Mapping[str, Any]) -> bool:
    return True


@dataclass
class DeliverySettings:
    timeout: float = 10.0
    concurrency: int = 16
    rate_limit: float | None = None
    max_attempts: int = 8
    first_retry: float = 10.0
    max_retry_hours: float = 24.0

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> DeliverySettings:
        def num(name: str, default: float) -> float:
            value = config.get(name)
            try:
                return float(value) if value not in (None, "") else default
            except (TypeError, ValueError):
                return default

        rate = config.get("rate_limit_per_second")
        return cls(
            timeout=max(0.1, num("timeout_seconds", 10.0)),
            concurrency=max(1, int(num("max_concurrency", 16))),
            rate_limit=float(rate) if rate not in (None, "", 0) else None,
            max_attempts=max(1, int(num("max_attempts", 8))),
            first_retry=max(0.0, num("first_retry_seconds", 10.0)),
            max_retry_hours=max(0.0, num("max_retry_hours", 24.0)),
        )


@dataclass
class LiveConnector:
    id: str
    profile_id: str
    name: str
    type: ConnectorType
    version: int
    enabled: bool
    context: BuildContext
    settings: DeliverySettings
    secrets: tuple[str, ...]  # secret values, to mask wherever a request is shown


@dataclass
class LiveAction:
    id: str
    name: str
    connector: LiveConnector
    type: ActionType
    enabled: bool  # the action and its connector are both on
    source: dict[str, Any]
    matches: Callable[[Mapping[str, Any]], bool]
    data_source_key: str | None
    consent: frozenset[str]
    mappings: CompiledMappings
    batching: Batching | None

    @property
    def profile_id(self) -> str:
        return self.connector.profile_id

    @property
    def audience_id(self) -> str | None:
        value = self.source.get("audience")
        return str(value) if value else None


@dataclass
class LiveProfile:
    id: str
    account: str
    profile: str
    settings: dict[str, Any]
    data_source_keys: dict[str, str] = field(default_factory=dict)  # key -> data source id
    event_actions: list[LiveAction] = field(default_factory=list)
    audience_actions: list[LiveAction] = field(default_factory=list)
    # AudienceStream definitions as stored, oldest first; sluice.audiences compiles them.
    audiences: dict[str, dict[str, Any]] = field(default_factory=dict)
    visitor_attributes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def enforcement(self) -> bool:
        return bool(self.settings["consent"]["enforcement"])

    @property
    def missing_consent(self) -> str:
        return str(self.settings["consent"]["missing"])


@dataclass
class CompiledConfig:
    revision: int = -1
    profiles: dict[tuple[str, str], LiveProfile] = field(default_factory=dict)
    profiles_by_id: dict[str, LiveProfile] = field(default_factory=dict)
    actions: dict[str, LiveAction] = field(default_factory=dict)
    connectors: dict[str, LiveConnector] = field(default_factory=dict)


def _batching(action_type: ActionType, params: Mapping[str, Any]) -> Batching | None:
    """The type's batch limits, narrowed by the action's own constant settings if any."""
    limits = action_type.batching
    if limits is None:
        return None
    count, age = limits.max_count, limits.max_age_seconds
    try:
        if params.get("max_batch_size") is not None:
            count = max(1, min(count, int(params["max_batch_size"])))
        if params.get("max_batch_age_seconds") is not None:
            age = max(0.0, min(age, float(params["max_batch_age_seconds"])))
    except (TypeError, ValueError):
        pass
    return Batching(count, limits.max_bytes, age)


def _constants(mappings: list[dict[str, Any]]) -> dict[str, Any]:
    return {m["parameter"]: m["value"] for m in mappings if "value" in m and "key" not in m}


def _compile_connector(
    published: PublishedConnector,
    ctype: ConnectorType,
    feeds: dict[str, Callable[[Mapping[str, Any]], bool]],
    key_of_source: dict[str, str],
    engine: TemplateEngine,
) -> tuple[LiveConnector, list[LiveAction]]:
    config = dict(published.configuration)
    secret_names = ctype.secret_fields()
    base_url = config.get("base_url") or ctype.base_url
    connector = LiveConnector(
        id=published.id,
        profile_id=published.profile_id,
        name=published.name,
        type=ctype,
        version=published.version,
        enabled=published.enabled,
        context=BuildContext(config=config, base_url=base_url, connector_id=published.id),
        settings=DeliverySettings.from_config(config),
        secrets=tuple(str(config[n]) for n in secret_names if config.get(n) not in (None, "")),
    )
    live: list[LiveAction] = []
    for raw in published.actions:
        action_type = ctype.action(raw["type"])
        if action_type is None:
            log.warning("action %s has unknown type %s; skipped", raw["id"], raw["type"])
            continue
        source = dict(raw.get("source") or {})
        feed_id = source.get("event_feed")
        matches = _always if feed_id in (None, ALL_EVENTS) else feeds.get(str(feed_id))
        if matches is None:
            log.warning("action %s uses the missing feed %s; skipped", raw["id"], feed_id)
            continue
        mappings = list(raw.get("mappings") or [])
        try:
            compiled = compile_mappings(action_type, mappings, engine)
        except Exception:  # a published action must never take the runtime down
            log.exception("cannot compile the mappings of action %s; skipped", raw["id"])
            continue
        if action_type.user_consent:
            categories = raw.get("consent_categories") or []
        else:
            categories = list(action_type.consent_categories)
        data_source = source.get("data_source")
        live.append(
            LiveAction(
                id=raw["id"],
                name=raw["name"],
                connector=connector,
                type=action_type,
                enabled=bool(raw.get("enabled")) and published.enabled,
                source=source,
                matches=matches,
                data_source_key=key_of_source.get(str(data_source)) if data_source else None,
                consent=frozenset(normalize_category(c) for c in categories),
                mappings=compiled,
                batching=_batching(action_type, _constants(mappings)),
            )
        )
    return connector, live


def build(
    conn: Connection, registry: Registry, box: SecretBox, engine: TemplateEngine
) -> CompiledConfig:
    """Read the live configuration and compile it."""
    compiled = CompiledConfig(revision=revision.current(conn))
    for row in conn.execute(select(profiles)).all():
        settings = {**DEFAULT_SETTINGS, **jsonutil.loads(row.settings)}
        live_profile = LiveProfile(row.id, row.account, row.profile, settings)
        compiled.profiles[(row.account, row.profile)] = live_profile
        compiled.profiles_by_id[row.id] = live_profile
    key_of_source: dict[str, str] = {}
    for row in conn.execute(
        select(data_sources.c.id, data_sources.c.key, data_sources.c.profile_id)
    ):
        key_of_source[row.id] = row.key
        owner = compiled.profiles_by_id.get(row.profile_id)
        if owner is not None:
            owner.data_source_keys[row.key] = row.id
    feeds: dict[str, Callable[[Mapping[str, Any]], bool]] = {}
    for row in conn.execute(select(event_feeds.c.id, event_feeds.c.conditions)):
        try:
            feeds[row.id] = compile_conditions(jsonutil.loads(row.conditions))
        except Exception:
            log.exception("cannot compile the event feed %s", row.id)
    for row in conn.execute(select(audiences).order_by(audiences.c.created_at, audiences.c.id)):
        owner = compiled.profiles_by_id.get(row.profile_id)
        if owner is not None:
            owner.audiences[row.id] = {
                "id": row.id,
                "name": row.name,
                "conditions": jsonutil.loads(row.conditions),
            }
    for row in conn.execute(
        select(visitor_attributes).order_by(
            visitor_attributes.c.created_at, visitor_attributes.c.id
        )
    ):
        owner = compiled.profiles_by_id.get(row.profile_id)
        if owner is not None:
            owner.visitor_attributes.append(
                {
                    "id": row.id,
                    "name": row.name,
                    "scope": row.scope,
                    "type": row.type,
                    "rules": jsonutil.loads(row.rules),
                }
            )
    for published in load_published(conn, box):
        ctype = registry.get(published.type)
        owner = compiled.profiles_by_id.get(published.profile_id)
        if ctype is None or owner is None:
            continue
        connector, actions = _compile_connector(published, ctype, feeds, key_of_source, engine)
        compiled.connectors[connector.id] = connector
        for action in actions:
            compiled.actions[action.id] = action
            if not action.enabled:
                continue
            if action.audience_id:
                owner.audience_actions.append(action)
            else:
                owner.event_actions.append(action)
    return compiled
