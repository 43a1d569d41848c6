"""Drafts: a connector and its actions as stored, as shown, and as a canonical snapshot.

Every edit changes the draft rows; :func:`refresh` then compares the draft's snapshot (and
its secrets) with the published version's, so ``has_unpublished_changes`` is exact: editing
back to what is live shows no changes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Connection, Row, and_, select, update

from sluice import jsonutil
from sluice.connectors.definition import ActionType, ConnectorType
from sluice.connectors.registry import Registry
from sluice.crypto import MASK, SecretBox
from sluice.engine.mapping import compute_status
from sluice.errors import NotFound, ValidationFailed
from sluice.storage.tables import actions, connector_versions, connectors

SNAPSHOT_ACTION_KEYS = ("id", "name", "type", "enabled", "source", "mappings", "consent_categories")
UNKNOWN_TYPE_STATUS: dict[str, Any] = {"state": "INCOMPLETE", "groups": {}, "missing": []}


def connector_type(registry: Registry, type_id: str) -> ConnectorType:
    """The type of a stored connector; one whose plugin is gone can only be read or deleted."""
    ct = registry.get(type_id)
    if ct is None:
        raise ValidationFailed.field(
            "type", f"the connector type {type_id!r} is not installed on this server"
        )
    return ct


def connector_row(conn: Connection, profile_id: str, connector_id: str) -> Row[Any]:
    row = conn.execute(
        select(connectors).where(
            connectors.c.id == connector_id, connectors.c.profile_id == profile_id
        )
    ).first()
    if row is None:
        raise NotFound(f"no connector {connector_id}")
    return row


def action_row(conn: Connection, connector_id: str, action_id: str) -> Row[Any]:
    row = conn.execute(
        select(actions).where(actions.c.id == action_id, actions.c.connector_id == connector_id)
    ).first()
    if row is None:
        raise NotFound(f"no action {action_id} on the connector {connector_id}")
    return row


def action_rows(conn: Connection, connector_ids: Sequence[str]) -> dict[str, list[Row[Any]]]:
    """The actions of each connector, in their order."""
    found: dict[str, list[Row[Any]]] = {cid: [] for cid in connector_ids}
    if not connector_ids:
        return found
    query = (
        select(actions)
        .where(actions.c.connector_id.in_(list(connector_ids)))
        .order_by(actions.c.position, actions.c.created_at, actions.c.id)
    )
    for row in conn.execute(query):
        found[row.connector_id].append(row)
    return found


def status_of(action_type: ActionType | None, mappings: list[dict[str, Any]]) -> dict[str, Any]:
    if action_type is None:
        return dict(UNKNOWN_TYPE_STATUS)
    return compute_status(action_type, mappings)


def action_json(row: Row[Any], ct: ConnectorType | None) -> dict[str, Any]:
    """An action as the API shows it (SPEC §4)."""
    mappings = jsonutil.loads(row.mappings)
    action_type = ct.action(row.type) if ct is not None else None
    return {
        "id": row.id,
        "connector_id": row.connector_id,
        "name": row.name,
        "type": row.type,
        "enabled": bool(row.enabled),
        "source": jsonutil.loads(row.source),
        "mappings": mappings,
        "consent_categories": jsonutil.loads(row.consent_categories),
        "status": status_of(action_type, mappings),
    }


def masked_configuration(
    configuration: dict[str, Any], secret_names: Iterable[str]
) -> dict[str, Any]:
    """The non-secret values plus ``"********"`` for each secret that is set."""
    shown = dict(configuration)
    for name in sorted(secret_names):
        shown[name] = MASK
    return shown


def snapshot_action(row: Row[Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "type": row.type,
        "enabled": bool(row.enabled),
        "source": jsonutil.loads(row.source),
        "mappings": jsonutil.loads(row.mappings),
        "consent_categories": jsonutil.loads(row.consent_categories),
    }


def snapshot(row: Row[Any], action_list: Iterable[Row[Any]]) -> dict[str, Any]:
    """What a version records: the connector and its actions, no secrets."""
    return {
        "id": row.id,
        "type": row.type,
        "name": row.name,
        "configuration": jsonutil.loads(row.configuration),
        "enabled": bool(row.enabled),
        "actions": [snapshot_action(a) for a in action_list],
    }


def draft_snapshot(conn: Connection, row: Row[Any]) -> dict[str, Any]:
    return snapshot(row, action_rows(conn, [row.id])[row.id])


def same_content(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Equal snapshots, the order of actions aside."""
    keys = ("type", "name", "configuration", "enabled")
    if any(a.get(k) != b.get(k) for k in keys):
        return False
    by_id_a = {x["id"]: x for x in a.get("actions", [])}
    by_id_b = {x["id"]: x for x in b.get("actions", [])}
    return by_id_a == by_id_b


def same_secrets(box: SecretBox, a: bytes | None, b: bytes | None) -> bool:
    if a == b:
        return True
    return box.decrypt(a) == box.decrypt(b)


def published_row(conn: Connection, connector_id: str) -> Row[Any] | None:
    return conn.execute(
        select(connector_versions)
        .join(
            connectors,
            and_(
                connectors.c.id == connector_versions.c.connector_id,
                connectors.c.published_version == connector_versions.c.version,
            ),
        )
        .where(connectors.c.id == connector_id)
    ).first()


def has_changes(conn: Connection, box: SecretBox, row: Row[Any]) -> bool:
    """Does the draft differ from the published version (content or secrets)?"""
    if row.published_version is None:
        return True
    live = published_row(conn, row.id)
    if live is None:
        return True
    if not same_secrets(box, row.secrets, live.secrets):
        return True
    return not same_content(draft_snapshot(conn, row), jsonutil.loads(live.snapshot))


def refresh(conn: Connection, box: SecretBox, connector_id: str) -> bool:
    """Recompute ``has_unpublished_changes`` after an edit; returns the new value."""
    row = conn.execute(select(connectors).where(connectors.c.id == connector_id)).first()
    if row is None:
        return False
    changed = has_changes(conn, box, row)
    if changed != bool(row.has_unpublished_changes):
        conn.execute(
            update(connectors)
            .where(connectors.c.id == connector_id)
            .values(has_unpublished_changes=changed)
        )
    return changed


def check_body(body: Any, allowed: Iterable[str], read_only: Iterable[str] = ()) -> dict[str, Any]:
    """The request object; an unknown key is a 422, read-only keys sent back are ignored."""
    if not isinstance(body, dict):
        raise ValidationFailed.field("body", "must be a JSON object")
    allowed_set = set(allowed)
    ignored = set(read_only)
    for key in body:
        if key not in allowed_set and key not in ignored:
            raise ValidationFailed.field(
                str(key), f"unknown field; expected {', '.join(sorted(allowed_set))}"
            )
    return {k: v for k, v in body.items() if k in allowed_set}


def check_name(value: Any, field: str = "name") -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValidationFailed.field(field, "is required")
    if len(value.strip()) > 200:
        raise ValidationFailed.field(field, "must be at most 200 characters")
    return value.strip()


def check_bool(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationFailed.field(field, "must be true or false")
    return value


def check_ids(value: Any, field: str = "ids") -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationFailed.field(field, "must be a list of ids")
    return list(dict.fromkeys(value))
