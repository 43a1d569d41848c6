"""Connectors: the draft CRUD, toggles, duplicates and the landing snapshot (SPEC §4).

Every edit changes the draft only (it runs after Publish, :mod:`sluice.config.publishing`);
deleting a connector takes effect at once. Secret configuration values are write-only:
stored encrypted and shown as ``"********"``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal
from sluice.config import audit, configuration, drafts, revision
from sluice.config.profiles import Profile
from sluice.connectors.definition import ConnectorType
from sluice.errors import NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.services import Services
from sluice.storage.tables import actions, connector_health, connectors, counters

COUNTERS = ("triggered", "success", "error", "retried", "filtered_consent", "dropped")
CREATE_KEYS = ("type", "name", "configuration", "enabled")
PATCH_KEYS = ("name", "configuration", "enabled")
READ_ONLY_KEYS = (
    "id",
    "published_version",
    "has_unpublished_changes",
    "health",
    "actions",
    "counts",
)
DAY_SECONDS = 86_400


def zero_counts() -> dict[str, int]:
    return dict.fromkeys(COUNTERS, 0)


def default_health() -> dict[str, Any]:
    return {"state": "ok", "since": None, "reason": None}


def _counts(
    conn: Connection, profile_id: str, connector_ids: Sequence[str] | None = None
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """The six counters of the last 24 h, by connector and by action."""
    since = int((timeutil.now() - DAY_SECONDS) // 60)
    query = select(
        counters.c.connector_id,
        counters.c.action_id,
        *[func.sum(getattr(counters.c, name)).label(name) for name in COUNTERS],
    ).where(counters.c.minute >= since)
    if connector_ids is not None:
        query = query.where(counters.c.connector_id.in_(list(connector_ids)))
    else:
        query = query.where(counters.c.profile_id == profile_id)
    by_connector: dict[str, dict[str, int]] = {}
    by_action: dict[str, dict[str, int]] = {}
    for row in conn.execute(query.group_by(counters.c.connector_id, counters.c.action_id)):
        action_counts = {name: int(getattr(row, name) or 0) for name in COUNTERS}
        by_action[row.action_id] = action_counts
        total = by_connector.setdefault(row.connector_id, zero_counts())
        for name in COUNTERS:
            total[name] += action_counts[name]
    return by_connector, by_action


def _health(conn: Connection, connector_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    if not connector_ids:
        return found
    query = select(connector_health).where(connector_health.c.connector_id.in_(list(connector_ids)))
    for row in conn.execute(query):
        found[row.connector_id] = {
            "state": row.state,
            "since": timeutil.iso(row.since),
            "reason": row.reason,
        }
    return found


def render(services: Services, conn: Connection, rows: Sequence[Row[Any]]) -> list[dict[str, Any]]:
    """Connectors as the API shows them, with actions, health and counts."""
    if not rows:
        return []
    ids = [row.id for row in rows]
    profile_id = rows[0].profile_id
    by_connector = drafts.action_rows(conn, ids)
    health = _health(conn, ids)
    counts, action_counts = _counts(conn, profile_id, ids if len(ids) < 50 else None)
    shown = []
    for row in rows:
        ct = services.registry.get(row.type)
        action_list = []
        for action in by_connector[row.id]:
            item = drafts.action_json(action, ct)
            item["counts"] = action_counts.get(action.id) or zero_counts()
            action_list.append(item)
        secrets = services.box.decrypt(row.secrets)
        shown.append(
            {
                "id": row.id,
                "type": row.type,
                "name": row.name,
                "configuration": drafts.masked_configuration(
                    jsonutil.loads(row.configuration), secrets
                ),
                "enabled": bool(row.enabled),
                "published_version": row.published_version,
                "has_unpublished_changes": bool(row.has_unpublished_changes),
                "health": health.get(row.id) or default_health(),
                "actions": action_list,
                "counts": counts.get(row.id) or zero_counts(),
            }
        )
    return shown


def list_connectors(services: Services, profile: Profile) -> list[dict[str, Any]]:
    """The landing snapshot: every connector of the profile, by type name then name."""
    with services.db.read() as conn:
        rows = conn.execute(
            select(connectors)
            .where(connectors.c.profile_id == profile.id)
            .order_by(connectors.c.type, func.lower(connectors.c.name), connectors.c.created_at)
        ).all()
        shown = render(services, conn, rows)

    def type_name(item: dict[str, Any]) -> str:
        ct = services.registry.get(item["type"])
        return (ct.name if ct is not None else item["type"]).casefold()

    return sorted(shown, key=type_name)


def get_connector(services: Services, profile: Profile, connector_id: str) -> dict[str, Any]:
    with services.db.read() as conn:
        return render(services, conn, [drafts.connector_row(conn, profile.id, connector_id)])[0]


def _reread(services: Services, conn: Connection, connector_id: str) -> dict[str, Any]:
    row = conn.execute(select(connectors).where(connectors.c.id == connector_id)).one()
    return render(services, conn, [row])[0]


def known_type(services: Services, type_id: Any) -> ConnectorType:
    ct = services.registry.get(type_id) if isinstance(type_id, str) else None
    if ct is None:
        valid = ", ".join(services.registry.ids())
        raise ValidationFailed(
            f"type: unknown connector type {type_id!r}; valid types: {valid}",
            [{"field": "type", "message": "unknown connector type", "valid": valid.split(", ")}],
        )
    return ct


def create_connector(
    services: Services, actor: Principal, profile: Profile, body: Any
) -> dict[str, Any]:
    body = drafts.check_body(body, CREATE_KEYS, READ_ONLY_KEYS)
    ct = known_type(services, body.get("type"))
    name = drafts.check_name(body.get("name"))
    enabled = drafts.check_bool(body.get("enabled", False), "enabled")
    plain, secrets = configuration.merge(ct, {}, {}, body.get("configuration"))
    configuration.require_complete(ct, plain, secrets)
    now = timeutil.now()
    connector_id = new_id("con")
    with services.db.begin() as conn:
        conn.execute(
            insert(connectors).values(
                id=connector_id,
                profile_id=profile.id,
                type=ct.id,
                name=name,
                configuration=jsonutil.dumps(plain),
                secrets=services.box.encrypt(secrets),
                enabled=enabled,
                published_version=None,
                has_unpublished_changes=True,
                created_at=now,
                updated_at=now,
            )
        )
        audit.record(
            conn,
            actor,
            "connector.create",
            connector_id,
            profile_id=profile.id,
            details={"name": name, "type": ct.id},
        )
        return _reread(services, conn, connector_id)


def patch_connector(
    services: Services, actor: Principal, profile: Profile, connector_id: str, body: Any
) -> dict[str, Any]:
    given_type = body.get("type") if isinstance(body, dict) else None
    body = drafts.check_body(body, PATCH_KEYS, (*READ_ONLY_KEYS, "type"))
    with services.db.begin() as conn:
        row = drafts.connector_row(conn, profile.id, connector_id)
        if given_type is not None and given_type != row.type:
            raise ValidationFailed.field("type", "cannot be changed; create a new connector")
        ct = drafts.connector_type(services.registry, row.type)
        values: dict[str, Any] = {"updated_at": timeutil.now()}
        if "name" in body:
            values["name"] = drafts.check_name(body["name"])
        if "enabled" in body:
            values["enabled"] = drafts.check_bool(body["enabled"], "enabled")
        if "configuration" in body:
            old_secrets = services.box.decrypt(row.secrets)
            plain, secrets = configuration.merge(
                ct, jsonutil.loads(row.configuration), old_secrets, body["configuration"]
            )
            configuration.require_complete(ct, plain, secrets)
            values["configuration"] = jsonutil.dumps(plain)
            if secrets != old_secrets:
                values["secrets"] = services.box.encrypt(secrets)
        conn.execute(update(connectors).where(connectors.c.id == connector_id).values(**values))
        drafts.refresh(conn, services.box, connector_id)
        audit.record(
            conn,
            actor,
            "connector.update",
            connector_id,
            profile_id=profile.id,
            details=_change_summary(body),
        )
        return _reread(services, conn, connector_id)


def _change_summary(body: dict[str, Any]) -> dict[str, Any]:
    """What an edit touched, for the audit log: never a configuration value (secrets)."""
    details: dict[str, Any] = {k: v for k, v in body.items() if k in ("name", "enabled")}
    if isinstance(body.get("configuration"), dict):
        details["configuration"] = sorted(body["configuration"])
    return details


def delete_connector(
    services: Services, actor: Principal, profile: Profile, connector_id: str
) -> None:
    """Takes effect at once: the runtime stops running it."""
    with services.db.begin() as conn:
        row = drafts.connector_row(conn, profile.id, connector_id)
        conn.execute(delete(actions).where(actions.c.connector_id == connector_id))
        conn.execute(
            delete(connector_health).where(connector_health.c.connector_id == connector_id)
        )
        conn.execute(delete(connectors).where(connectors.c.id == connector_id))
        audit.record(
            conn,
            actor,
            "connector.delete",
            connector_id,
            profile_id=profile.id,
            details={
                "name": row.name,
                "type": row.type,
                "published_version": row.published_version,
            },
        )
        revision.bump(conn)


def duplicate_connector(
    services: Services, actor: Principal, profile: Profile, connector_id: str, body: Any
) -> dict[str, Any]:
    """A copy with its actions, everything switched off and no secrets."""
    body = drafts.check_body(body, ("name",))
    name = drafts.check_name(body.get("name"))
    now = timeutil.now()
    new_connector = new_id("con")
    with services.db.begin() as conn:
        row = drafts.connector_row(conn, profile.id, connector_id)
        conn.execute(
            insert(connectors).values(
                id=new_connector,
                profile_id=profile.id,
                type=row.type,
                name=name,
                configuration=row.configuration,
                secrets=None,
                enabled=False,
                published_version=None,
                has_unpublished_changes=True,
                created_at=now,
                updated_at=now,
            )
        )
        copies = [
            {
                "id": new_id("act"),
                "connector_id": new_connector,
                "profile_id": profile.id,
                "name": action.name,
                "type": action.type,
                "enabled": False,
                "source": action.source,
                "mappings": action.mappings,
                "consent_categories": action.consent_categories,
                "position": action.position,
                "created_at": now,
                "updated_at": now,
            }
            for action in drafts.action_rows(conn, [connector_id])[connector_id]
        ]
        if copies:
            conn.execute(insert(actions), copies)
        audit.record(
            conn,
            actor,
            "connector.duplicate",
            new_connector,
            profile_id=profile.id,
            details={"name": name, "from": connector_id},
        )
        return _reread(services, conn, new_connector)


def bulk_toggle(
    services: Services, actor: Principal, profile: Profile, body: Any
) -> list[dict[str, Any]]:
    """Switch many connectors on or off: ``{"ids": [...], "enabled": bool}``."""
    body = drafts.check_body(body, ("ids", "enabled"))
    ids = drafts.check_ids(body.get("ids"))
    enabled = drafts.check_bool(body.get("enabled"), "enabled")
    with services.db.begin() as conn:
        rows = conn.execute(
            select(connectors).where(
                connectors.c.profile_id == profile.id, connectors.c.id.in_(ids)
            )
        ).all()
        missing = sorted(set(ids) - {row.id for row in rows})
        if missing:
            raise NotFound(f"no connector {', '.join(missing)}", [{"id": i} for i in missing])
        conn.execute(
            update(connectors)
            .where(connectors.c.id.in_(ids))
            .values(enabled=enabled, updated_at=timeutil.now())
        )
        for connector_id in ids:
            drafts.refresh(conn, services.box, connector_id)
        audit.record(
            conn,
            actor,
            "connector.bulk",
            ",".join(ids)[:200],
            profile_id=profile.id,
            details={"ids": ids, "enabled": enabled},
        )
        order = {cid: i for i, cid in enumerate(ids)}
        fresh = conn.execute(select(connectors).where(connectors.c.id.in_(ids))).all()
        return render(services, conn, sorted(fresh, key=lambda r: order[r.id]))


def record_resume(
    services: Services, actor: Principal, profile: Profile, connector_id: str, *, reset: bool
) -> None:
    """Audit a resume; with ``reset`` mark the connector's shared health row ok."""
    now = timeutil.now()
    with services.db.begin() as conn:
        drafts.connector_row(conn, profile.id, connector_id)
        if reset:
            conn.execute(
                update(connector_health)
                .where(connector_health.c.connector_id == connector_id)
                .values(state="ok", since=now, reason=None, pauses=0, updated_at=now)
            )
        audit.record(conn, actor, "connector.resume", connector_id, profile_id=profile.id)


def require_connector(services: Services, profile: Profile, connector_id: str) -> None:
    with services.db.read() as conn:
        drafts.connector_row(conn, profile.id, connector_id)
