"""Actions of a connector: draft CRUD, toggles, reassigning and copying mappings (SPEC §4).

``PATCH`` replaces each field it names whole. Every change edits the connector's draft;
nothing here touches what runs until the connector is published.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal
from sluice.config import audit, drafts
from sluice.config.action_fields import (
    action_type_of,
    check_consent,
    check_source,
    require_complete,
)
from sluice.config.profiles import Profile
from sluice.connectors.definition import ActionType
from sluice.engine.mapping import validate_mappings
from sluice.errors import NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.services import Services
from sluice.storage.tables import actions, connectors

FIELDS = ("name", "type", "enabled", "source", "mappings", "consent_categories")
READ_ONLY_KEYS = ("id", "connector_id", "status", "counts")


def _touch(conn: Connection, services: Services, connector_id: str) -> None:
    conn.execute(
        update(connectors).where(connectors.c.id == connector_id).values(updated_at=timeutil.now())
    )
    drafts.refresh(conn, services.box, connector_id)


def _json(
    services: Services, conn: Connection, connector_id: str, action_id: str
) -> dict[str, Any]:
    row = drafts.action_row(conn, connector_id, action_id)
    connector = conn.execute(select(connectors.c.type).where(connectors.c.id == connector_id)).one()
    return drafts.action_json(row, services.registry.get(connector.type))


def _mappings(action_type: ActionType, raw: Any) -> list[dict[str, Any]]:
    if raw is None:
        return []
    return validate_mappings(action_type, raw)


def list_actions(services: Services, profile: Profile, connector_id: str) -> list[dict[str, Any]]:
    with services.db.read() as conn:
        row = drafts.connector_row(conn, profile.id, connector_id)
        ct = services.registry.get(row.type)
        return [drafts.action_json(a, ct) for a in drafts.action_rows(conn, [row.id])[row.id]]


def get_action(
    services: Services, profile: Profile, connector_id: str, action_id: str
) -> dict[str, Any]:
    with services.db.read() as conn:
        drafts.connector_row(conn, profile.id, connector_id)
        return _json(services, conn, connector_id, action_id)


def create_action(
    services: Services, actor: Principal, profile: Profile, connector_id: str, body: Any
) -> dict[str, Any]:
    body = drafts.check_body(body, FIELDS, READ_ONLY_KEYS)
    with services.db.begin() as conn:
        connector = drafts.connector_row(conn, profile.id, connector_id)
        ct = drafts.connector_type(services.registry, connector.type)
        action_type = action_type_of(ct, body.get("type"))
        name = drafts.check_name(body.get("name", action_type.name))
        enabled = drafts.check_bool(body.get("enabled", False), "enabled")
        source = check_source(conn, profile.id, action_type, body.get("source"))
        mappings = _mappings(action_type, body.get("mappings"))
        consent = check_consent(
            action_type, body.get("consent_categories"), given="consent_categories" in body
        )
        if enabled:
            require_complete(action_type, mappings, name)
        position = conn.execute(
            select(func.max(actions.c.position)).where(actions.c.connector_id == connector_id)
        ).scalar()
        now = timeutil.now()
        action_id = new_id("act")
        conn.execute(
            insert(actions).values(
                id=action_id,
                connector_id=connector_id,
                profile_id=profile.id,
                name=name,
                type=action_type.id,
                enabled=enabled,
                source=jsonutil.dumps(source),
                mappings=jsonutil.dumps(mappings),
                consent_categories=jsonutil.dumps(consent),
                position=(position or 0) + 1,
                created_at=now,
                updated_at=now,
            )
        )
        _touch(conn, services, connector_id)
        audit.record(
            conn,
            actor,
            "action.create",
            action_id,
            profile_id=profile.id,
            details={"connector": connector_id, "name": name, "type": action_type.id},
        )
        return _json(services, conn, connector_id, action_id)


def patch_action(
    services: Services,
    actor: Principal,
    profile: Profile,
    connector_id: str,
    action_id: str,
    body: Any,
) -> dict[str, Any]:
    body = drafts.check_body(body, FIELDS, READ_ONLY_KEYS)
    with services.db.begin() as conn:
        connector = drafts.connector_row(conn, profile.id, connector_id)
        row = drafts.action_row(conn, connector_id, action_id)
        ct = drafts.connector_type(services.registry, connector.type)
        if "type" in body and body["type"] != row.type:
            raise ValidationFailed.field(
                "type", "cannot be changed; create a new action of the other type"
            )
        action_type = action_type_of(ct, row.type)
        values: dict[str, Any] = {"updated_at": timeutil.now()}
        name = row.name
        if "name" in body:
            name = values["name"] = drafts.check_name(body["name"])
        enabled = bool(row.enabled)
        if "enabled" in body:
            enabled = values["enabled"] = drafts.check_bool(body["enabled"], "enabled")
        if "source" in body:
            values["source"] = jsonutil.dumps(
                check_source(conn, profile.id, action_type, body["source"])
            )
        mappings = jsonutil.loads(row.mappings)
        if "mappings" in body:
            mappings = _mappings(action_type, body["mappings"])
            values["mappings"] = jsonutil.dumps(mappings)
        if "consent_categories" in body:
            consent = check_consent(action_type, body["consent_categories"], given=True)
            values["consent_categories"] = jsonutil.dumps(consent)
        if enabled:
            require_complete(action_type, mappings, name)
        conn.execute(update(actions).where(actions.c.id == action_id).values(**values))
        _touch(conn, services, connector_id)
        audit.record(
            conn,
            actor,
            "action.update",
            action_id,
            profile_id=profile.id,
            details={"connector": connector_id, "fields": sorted(body)},
        )
        return _json(services, conn, connector_id, action_id)


def delete_action(
    services: Services, actor: Principal, profile: Profile, connector_id: str, action_id: str
) -> None:
    with services.db.begin() as conn:
        drafts.connector_row(conn, profile.id, connector_id)
        row = drafts.action_row(conn, connector_id, action_id)
        conn.execute(delete(actions).where(actions.c.id == action_id))
        _touch(conn, services, connector_id)
        audit.record(
            conn,
            actor,
            "action.delete",
            action_id,
            profile_id=profile.id,
            details={"connector": connector_id, "name": row.name},
        )


def bulk_toggle(
    services: Services, actor: Principal, profile: Profile, connector_id: str, body: Any
) -> list[dict[str, Any]]:
    """Switch many actions of one connector on or off: ``{"ids": [...], "enabled": bool}``."""
    body = drafts.check_body(body, ("ids", "enabled"))
    ids = drafts.check_ids(body.get("ids"))
    enabled = drafts.check_bool(body.get("enabled"), "enabled")
    with services.db.begin() as conn:
        connector = drafts.connector_row(conn, profile.id, connector_id)
        rows = conn.execute(
            select(actions).where(actions.c.connector_id == connector_id, actions.c.id.in_(ids))
        ).all()
        missing = sorted(set(ids) - {row.id for row in rows})
        if missing:
            raise NotFound(
                f"no action {', '.join(missing)} on the connector {connector_id}",
                [{"id": i} for i in missing],
            )
        if enabled:
            ct = drafts.connector_type(services.registry, connector.type)
            for row in rows:
                require_complete(
                    action_type_of(ct, row.type), jsonutil.loads(row.mappings), row.name
                )
        conn.execute(
            update(actions)
            .where(actions.c.id.in_(ids))
            .values(enabled=enabled, updated_at=timeutil.now())
        )
        _touch(conn, services, connector_id)
        audit.record(
            conn,
            actor,
            "action.bulk",
            connector_id,
            profile_id=profile.id,
            details={"ids": ids, "enabled": enabled},
        )
        return [_json(services, conn, connector_id, action_id) for action_id in ids]


def reassign(
    services: Services,
    actor: Principal,
    profile: Profile,
    connector_id: str,
    action_id: str,
    body: Any,
) -> dict[str, Any]:
    """Move an action, mappings and all, to another connector of the same type."""
    body = drafts.check_body(body, ("connector_id",))
    target_id = body.get("connector_id")
    if not isinstance(target_id, str) or not target_id:
        raise ValidationFailed.field("connector_id", "is required")
    with services.db.begin() as conn:
        source = drafts.connector_row(conn, profile.id, connector_id)
        drafts.action_row(conn, connector_id, action_id)
        try:
            target = drafts.connector_row(conn, profile.id, target_id)
        except NotFound as exc:
            raise ValidationFailed.field("connector_id", f"no connector {target_id}") from exc
        if target.type != source.type:
            raise ValidationFailed.field(
                "connector_id",
                f"the connector {target.name!r} is of type {target.type}, not {source.type}: "
                "an action can only move between connectors of the same type",
            )
        if target.id != source.id:
            position = conn.execute(
                select(func.max(actions.c.position)).where(actions.c.connector_id == target.id)
            ).scalar()
            conn.execute(
                update(actions)
                .where(actions.c.id == action_id)
                .values(
                    connector_id=target.id,
                    position=(position or 0) + 1,
                    updated_at=timeutil.now(),
                )
            )
            _touch(conn, services, source.id)
            _touch(conn, services, target.id)
            audit.record(
                conn,
                actor,
                "action.reassign",
                action_id,
                profile_id=profile.id,
                details={"from": source.id, "to": target.id},
            )
        return _json(services, conn, target.id, action_id)


def _profile_action(conn: Connection, profile_id: str, action_id: str) -> Row[Any]:
    row = conn.execute(
        select(actions).where(actions.c.id == action_id, actions.c.profile_id == profile_id)
    ).first()
    if row is None:
        raise ValidationFailed.field("to_action_id", f"no action {action_id} in this profile")
    return row


def merge_mappings(
    source: list[dict[str, Any]],
    target: list[dict[str, Any]],
    target_type: ActionType,
    mode: str,
) -> list[dict[str, Any]]:
    """``keep``: the target's mappings win for parameters it maps; ``overwrite``: the source's.

    Only parameters the target's type has are copied; the target keeps every mapping of a
    parameter the source does not map.
    """
    copied = [m for m in source if target_type.parameter(str(m.get("parameter"))) is not None]
    mapped_by_source = {m["parameter"] for m in copied}
    mapped_by_target = {m["parameter"] for m in target}
    if mode == "keep":
        return target + [m for m in copied if m["parameter"] not in mapped_by_target]
    return [m for m in target if m["parameter"] not in mapped_by_source] + copied


def copy_mappings(
    services: Services,
    actor: Principal,
    profile: Profile,
    connector_id: str,
    action_id: str,
    body: Any,
) -> dict[str, Any]:
    """Copy this action's mappings to another action; answers the target action."""
    body = drafts.check_body(body, ("to_action_id", "mode"))
    mode = body.get("mode", "keep")
    if mode not in ("keep", "overwrite"):
        raise ValidationFailed.field("mode", "must be keep or overwrite")
    target_id = body.get("to_action_id")
    if target_id is None or target_id == "":
        raise ValidationFailed.field("to_action_id", "is required")
    if not isinstance(target_id, str):
        raise ValidationFailed.field("to_action_id", "must be an action id (a string)")
    with services.db.begin() as conn:
        drafts.connector_row(conn, profile.id, connector_id)
        source = drafts.action_row(conn, connector_id, action_id)
        target = _profile_action(conn, profile.id, target_id)
        target_connector = conn.execute(
            select(connectors).where(connectors.c.id == target.connector_id)
        ).one()
        ct = drafts.connector_type(services.registry, target_connector.type)
        target_type = action_type_of(ct, target.type)
        merged = merge_mappings(
            jsonutil.loads(source.mappings), jsonutil.loads(target.mappings), target_type, mode
        )
        mappings = validate_mappings(target_type, merged)
        if target.enabled:
            require_complete(target_type, mappings, target.name)
        conn.execute(
            update(actions)
            .where(actions.c.id == target.id)
            .values(mappings=jsonutil.dumps(mappings), updated_at=timeutil.now())
        )
        _touch(conn, services, target.connector_id)
        audit.record(
            conn,
            actor,
            "action.copy_mappings",
            target.id,
            profile_id=profile.id,
            details={"from": action_id, "mode": mode},
        )
        return _json(services, conn, target.connector_id, target.id)
