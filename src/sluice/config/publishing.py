"""Publishing: versions of a connector, their history, diffs and rollback (SPEC §2.11, §4).

Publish copies the draft into version N (an immutable snapshot without secrets, plus the
encrypted secrets it runs with) and makes it live. Rollback writes version n's content
back into the draft and publishes it as a new version: nothing is ever rewritten.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Row, delete, func, insert, select, update

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal
from sluice.config import audit, configuration, drafts, revision
from sluice.config.action_fields import action_type_of, check_source, require_complete
from sluice.config.diffing import diff_snapshots, secret_changes
from sluice.config.profiles import Profile
from sluice.errors import ApiError, NotFound, ValidationFailed
from sluice.services import Services
from sluice.storage.tables import actions, connector_versions, connectors

# The largest version number (a 32-bit column on PostgreSQL); none comes near it.
MAX_VERSION = 2**31 - 1

__all__ = [
    "diff_versions",
    "get_version",
    "list_versions",
    "publish",
    "rollback",
]


def _locked_connector(conn: Connection, profile_id: str, connector_id: str) -> Row[Any]:
    # FOR UPDATE serialises concurrent publishes of one connector on PostgreSQL; SQLite's
    # writers are serialised by BEGIN IMMEDIATE already.
    drafts.connector_row(conn, profile_id, connector_id)
    return conn.execute(
        select(connectors).where(connectors.c.id == connector_id).with_for_update()
    ).one()


def _prefixed(prefix: str, exc: ValidationFailed) -> ValidationFailed:
    details = [
        {**d, "field": f"{prefix}.{d['field']}"} if isinstance(d, dict) and "field" in d else d
        for d in exc.details
    ]
    return ValidationFailed(f"{prefix}.{exc.message}", details)


def check_publishable(
    conn: Connection, services: Services, row: Row[Any], snapshot: dict[str, Any]
) -> None:
    """What may not go live: an action switched on while INCOMPLETE, a source that is gone,
    or a connector switched on without its required configuration."""
    ct = drafts.connector_type(services.registry, row.type)
    if snapshot["enabled"]:
        configuration.require_complete(
            ct, snapshot["configuration"], services.box.decrypt(row.secrets)
        )
    for action in snapshot["actions"]:
        prefix = f"actions[{action['id']}]"
        try:
            action_type = action_type_of(ct, action["type"])
            check_source(conn, row.profile_id, action_type, action["source"])
            if action["enabled"]:
                require_complete(action_type, action["mappings"], action["name"])
        except ValidationFailed as exc:
            raise _prefixed(prefix, exc) from exc


def _record_version(
    conn: Connection,
    services: Services,
    actor: Principal,
    row: Row[Any],
    note: str,
    rolled_back_from: int | None = None,
) -> int:
    snapshot = drafts.draft_snapshot(conn, row)
    check_publishable(conn, services, row, snapshot)
    latest = conn.execute(
        select(func.max(connector_versions.c.version)).where(
            connector_versions.c.connector_id == row.id
        )
    ).scalar()
    version = int(latest or 0) + 1
    conn.execute(
        insert(connector_versions).values(
            connector_id=row.id,
            version=version,
            author=actor.name,
            created_at=timeutil.now(),
            note=note,
            rolled_back_from=rolled_back_from,
            snapshot=jsonutil.dumps(snapshot),
            secrets=row.secrets,
        )
    )
    conn.execute(
        update(connectors)
        .where(connectors.c.id == row.id)
        .values(published_version=version, has_unpublished_changes=False)
    )
    revision.bump(conn)
    return version


def _note(body: dict[str, Any]) -> str:
    note = body.get("note")
    if note is None:
        return ""
    if not isinstance(note, str) or len(note) > 2000:
        raise ValidationFailed.field("note", "must be text of at most 2000 characters")
    return note.strip()


def publish(
    services: Services, actor: Principal, profile: Profile, connector_id: str, body: Any
) -> tuple[int, bool]:
    """Make the draft live as a new version: ``(version, True)``; with nothing unpublished,
    ``(current version, False)`` and nothing is recorded."""
    body = drafts.check_body(body if body is not None else {}, ("note",))
    note = _note(body)
    with services.db.begin() as conn:
        row = _locked_connector(conn, profile.id, connector_id)
        if row.published_version is not None and not drafts.has_changes(conn, services.box, row):
            if row.has_unpublished_changes:
                drafts.refresh(conn, services.box, row.id)
            return int(row.published_version), False
        version = _record_version(conn, services, actor, row, note)
        audit.record(
            conn,
            actor,
            "connector.publish",
            connector_id,
            profile_id=profile.id,
            details={"version": version, "note": note},
        )
        return version, True


def _version_json(row: Row[Any], live: int | None) -> dict[str, Any]:
    return {
        "version": row.version,
        "author": row.author,
        "created_at": timeutil.iso(row.created_at),
        "note": row.note or None,
        "rolled_back_from": row.rolled_back_from,
        "live": row.version == live,
    }


def list_versions(services: Services, profile: Profile, connector_id: str) -> list[dict[str, Any]]:
    """Every version, newest first."""
    with services.db.read() as conn:
        connector = drafts.connector_row(conn, profile.id, connector_id)
        rows = conn.execute(
            select(*[c for c in connector_versions.c if c.name not in ("snapshot", "secrets")])
            .where(connector_versions.c.connector_id == connector_id)
            .order_by(connector_versions.c.version.desc())
        ).all()
    return [_version_json(r, connector.published_version) for r in rows]


def _version_row(conn: Connection, connector_id: str, version: int) -> Row[Any]:
    row = conn.execute(
        select(connector_versions).where(
            connector_versions.c.connector_id == connector_id,
            connector_versions.c.version == version,
        )
    ).first()
    if row is None:
        raise NotFound(f"the connector {connector_id} has no version {version}")
    return row


def get_version(
    services: Services, profile: Profile, connector_id: str, version: int
) -> dict[str, Any]:
    with services.db.read() as conn:
        connector = drafts.connector_row(conn, profile.id, connector_id)
        row = _version_row(conn, connector_id, version)
    shown = _version_json(row, connector.published_version)
    shown["snapshot"] = jsonutil.loads(row.snapshot)
    return shown


def diff_versions(
    services: Services, profile: Profile, connector_id: str, a: int, b: int
) -> dict[str, Any]:
    """What changed from version ``a`` to version ``b``; secrets only as ``"********"``."""
    with services.db.read() as conn:
        drafts.connector_row(conn, profile.id, connector_id)
        before = _version_row(conn, connector_id, a)
        after = _version_row(conn, connector_id, b)
    changes = diff_snapshots(jsonutil.loads(before.snapshot), jsonutil.loads(after.snapshot))
    changes.extend(
        secret_changes(services.box.decrypt(before.secrets), services.box.decrypt(after.secrets))
    )
    return {"from": a, "to": b, "changes": changes}


def _restore_actions(conn: Connection, row: Row[Any], wanted: list[dict[str, Any]]) -> set[str]:
    """Make the draft's actions those of a snapshot; returns other connectors touched."""
    current = {a.id for a in drafts.action_rows(conn, [row.id])[row.id]}
    keep = {a["id"] for a in wanted}
    gone = current - keep
    if gone:
        conn.execute(delete(actions).where(actions.c.id.in_(sorted(gone))))
    touched: set[str] = set()
    now = timeutil.now()
    for position, action in enumerate(wanted, start=1):
        values = {
            "connector_id": row.id,
            "profile_id": row.profile_id,
            "name": action["name"],
            "type": action["type"],
            "enabled": bool(action["enabled"]),
            "source": jsonutil.dumps(action["source"]),
            "mappings": jsonutil.dumps(action["mappings"]),
            "consent_categories": jsonutil.dumps(action["consent_categories"]),
            "position": position,
            "updated_at": now,
        }
        owner = conn.execute(
            select(actions.c.connector_id).where(actions.c.id == action["id"])
        ).scalar()
        if owner is None:
            conn.execute(insert(actions).values(id=action["id"], created_at=now, **values))
            continue
        if owner != row.id:
            # Reassigned since: rolling back moves it home again.
            touched.add(str(owner))
        conn.execute(update(actions).where(actions.c.id == action["id"]).values(**values))
    return touched


def rollback(
    services: Services, actor: Principal, profile: Profile, connector_id: str, body: Any
) -> int:
    """Publish version n's content as a new version, keeping the current secrets."""
    body = drafts.check_body(body, ("version", "note"))
    target = body.get("version")
    if isinstance(target, bool) or not isinstance(target, int) or not 1 <= target <= MAX_VERSION:
        raise ValidationFailed.field("version", "must be a version number")
    note = _note(body) or f"Rolled back to version {target}"
    with services.db.begin() as conn:
        row = _locked_connector(conn, profile.id, connector_id)
        try:
            old = jsonutil.loads(_version_row(conn, connector_id, target).snapshot)
        except NotFound as exc:
            raise ValidationFailed.field("version", exc.message) from exc
        conn.execute(
            update(connectors)
            .where(connectors.c.id == connector_id)
            .values(
                name=old["name"],
                configuration=jsonutil.dumps(old["configuration"]),
                enabled=bool(old["enabled"]),
                updated_at=timeutil.now(),
            )
        )
        touched = _restore_actions(conn, row, list(old["actions"]))
        fresh = conn.execute(select(connectors).where(connectors.c.id == connector_id)).one()
        try:
            version = _record_version(conn, services, actor, fresh, note, rolled_back_from=target)
        except ApiError as exc:
            raise type(exc)(
                f"cannot roll back to version {target}: {exc.message}", exc.details
            ) from exc
        for other in touched:
            drafts.refresh(conn, services.box, other)
        audit.record(
            conn,
            actor,
            "connector.rollback",
            connector_id,
            profile_id=profile.id,
            details={"version": version, "rolled_back_from": target},
        )
        return version
