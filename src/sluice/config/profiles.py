"""Accounts and profiles, with their settings."""

from __future__ import annotations

import copy
import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, delete, select, update
from sqlalchemy.exc import IntegrityError

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal
from sluice.config import audit, revision
from sluice.errors import Conflict, NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import (
    counters,
    deliveries,
    error_records,
    events,
    profiles,
    scheduled_jobs,
    traces,
    visitors,
)

DEFAULT_SETTINGS: dict[str, Any] = {
    "consent": {"enforcement": False, "missing": "allow"},
    "visit_timeout_minutes": 30,
    "rate_limit_per_second": None,
    "collect_token_required": False,
}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


@dataclass(frozen=True)
class Profile:
    id: str
    account: str
    profile: str
    settings: dict[str, Any]

    def as_json(self) -> dict[str, Any]:
        return {"account": self.account, "profile": self.profile, **copy.deepcopy(self.settings)}


def _from_row(row: Any) -> Profile:
    settings = copy.deepcopy(DEFAULT_SETTINGS)
    settings.update(jsonutil.loads(row.settings))
    return Profile(row.id, row.account, row.profile, settings)


def validate_settings(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """Merge ``patch`` into ``current`` (SPEC §4: an unknown key is a 422)."""
    merged = copy.deepcopy(current)
    for key, value in patch.items():
        if key in ("account", "profile"):
            if value is not None:
                raise ValidationFailed.field(key, "cannot be changed")
            continue
        if key not in DEFAULT_SETTINGS:
            raise ValidationFailed.field(key, "unknown setting")
        if key == "consent":
            if not isinstance(value, dict):
                raise ValidationFailed.field("consent", "must be an object")
            consent = dict(merged["consent"])
            for ckey, cvalue in value.items():
                if ckey == "enforcement":
                    if not isinstance(cvalue, bool):
                        raise ValidationFailed.field("consent.enforcement", "must be a boolean")
                elif ckey == "missing":
                    if cvalue not in ("allow", "deny"):
                        raise ValidationFailed.field("consent.missing", "must be allow or deny")
                else:
                    raise ValidationFailed.field(f"consent.{ckey}", "unknown setting")
                consent[ckey] = cvalue
            merged["consent"] = consent
        elif key == "visit_timeout_minutes":
            if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 1440:
                raise ValidationFailed.field(key, "must be a whole number of minutes, 1 to 1440")
            merged[key] = value
        elif key == "rate_limit_per_second":
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float) or value <= 0
            ):
                raise ValidationFailed.field(key, "must be a positive number or null")
            merged[key] = value
        elif key == "collect_token_required":
            if not isinstance(value, bool):
                raise ValidationFailed.field(key, "must be a boolean")
            merged[key] = value
    return merged


def get(db: Database | Connection, account: str, profile: str) -> Profile:
    query = select(profiles).where(profiles.c.account == account, profiles.c.profile == profile)
    if isinstance(db, Database):
        with db.read() as conn:
            row = conn.execute(query).first()
    else:
        row = db.execute(query).first()
    if row is None:
        raise NotFound(f"no profile {account}/{profile}")
    return _from_row(row)


def list_all(db: Database, principal: Principal) -> list[Profile]:
    with db.read() as conn:
        rows = conn.execute(select(profiles).order_by(profiles.c.account, profiles.c.profile)).all()
    return [p for p in map(_from_row, rows) if principal.may_see(p.account, p.profile)]


def create(
    db: Database, actor: Principal, account: str, profile: str = "main", **settings: Any
) -> Profile:
    for field, value in (("account", account), ("profile", profile)):
        if not isinstance(value, str) or not NAME_RE.match(value):
            raise ValidationFailed.field(
                field,
                "must be 1-100 letters, digits, '_', '-' or '.', starting with a letter or digit",
            )
    merged = validate_settings(DEFAULT_SETTINGS, settings)
    now = timeutil.now()
    profile_id = new_id("prf")
    row: dict[str, Any] = {
        "id": profile_id,
        "account": account,
        "profile": profile,
        "settings": jsonutil.dumps(merged),
        "created_at": now,
        "updated_at": now,
    }
    try:
        with db.begin() as conn:
            conn.execute(profiles.insert().values(**row))
            audit.record(
                conn, actor, "profile.create", f"{account}/{profile}", profile_id=row["id"]
            )
            revision.bump(conn)
    except IntegrityError as exc:
        raise Conflict(f"the profile {account}/{profile} exists already") from exc
    return Profile(profile_id, account, profile, merged)


def patch(db: Database, actor: Principal, current: Profile, changes: dict[str, Any]) -> Profile:
    merged = validate_settings(current.settings, changes)
    with db.begin() as conn:
        conn.execute(
            update(profiles)
            .where(profiles.c.id == current.id)
            .values(settings=jsonutil.dumps(merged), updated_at=timeutil.now())
        )
        audit.record(
            conn,
            actor,
            "profile.update",
            f"{current.account}/{current.profile}",
            profile_id=current.id,
            details={"changes": changes},
        )
        revision.bump(conn)
    return Profile(current.id, current.account, current.profile, merged)


def remove(db: Database, actor: Principal, current: Profile) -> None:
    with db.begin() as conn:
        # The data plane's rows carry the profile id without a foreign key (they are
        # written on the hot path): remove them with it.
        for table in (
            deliveries,
            events,
            error_records,
            counters,
            traces,
            visitors,
            scheduled_jobs,
        ):
            conn.execute(delete(table).where(table.c.profile_id == current.id))
        conn.execute(delete(profiles).where(profiles.c.id == current.id))
        audit.record(conn, actor, "profile.delete", f"{current.account}/{current.profile}")
        revision.bump(conn)
