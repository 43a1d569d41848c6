"""Users of the web interface, with argon2-hashed passwords."""

from __future__ import annotations

import functools
import secrets
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal, check_profile_refs, check_role
from sluice.errors import Conflict, NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import users

_hasher = PasswordHasher()


def _row_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "email": row.email,
        "role": row.role,
        "profiles": jsonutil.loads(row.profiles),
        "disabled": row.disabled,
        "created_at": timeutil.iso(row.created_at),
    }


def _check_email(email: str) -> str:
    email = email.strip().lower()
    if "@" not in email or len(email) > 320:
        raise ValidationFailed.field("email", "must be an email address")
    return email


def create_user(
    db: Database,
    email: str,
    role: str,
    password: str | None = None,
    profiles: list[str] | None = None,
) -> tuple[dict[str, Any], str | None]:
    """Create a user; returns it and the generated password when none was given."""
    email = _check_email(email)
    check_role(role)
    check_profile_refs(profiles)
    generated = None
    if password is None:
        password = generated = secrets.token_urlsafe(12)
    if len(password) < 8:
        raise ValidationFailed.field("password", "must be at least 8 characters")
    now = timeutil.now()
    user_id = new_id("usr")
    row: dict[str, Any] = {
        "id": user_id,
        "email": email,
        "password_hash": _hasher.hash(password),
        "role": role,
        "profiles": jsonutil.dumps(profiles) if profiles else None,
        "disabled": False,
        "created_at": now,
        "updated_at": now,
    }
    try:
        with db.begin() as conn:
            conn.execute(users.insert().values(**row))
    except IntegrityError as exc:
        raise Conflict(f"a user {email} exists already") from exc
    return get_user(db, user_id), generated


def get_user(db: Database, user_id: str) -> dict[str, Any]:
    with db.read() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFound(f"no user {user_id}")
    return _row_json(row)


def list_users(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(select(users).order_by(users.c.email)).all()
    return [_row_json(r) for r in rows]


def update_user(db: Database, user_id: str, changes: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    if "role" in changes:
        values["role"] = check_role(changes["role"])
    if "profiles" in changes:
        refs = check_profile_refs(changes["profiles"])
        values["profiles"] = jsonutil.dumps(refs) if refs else None
    if "disabled" in changes:
        values["disabled"] = bool(changes["disabled"])
    if changes.get("password") is not None:
        if len(changes["password"]) < 8:
            raise ValidationFailed.field("password", "must be at least 8 characters")
        values["password_hash"] = _hasher.hash(changes["password"])
    values["updated_at"] = timeutil.now()
    with db.begin() as conn:
        result = conn.execute(update(users).where(users.c.id == user_id).values(**values))
    if result.rowcount == 0:
        raise NotFound(f"no user {user_id}")
    return get_user(db, user_id)


def delete_user(db: Database, user_id: str) -> None:
    with db.begin() as conn:
        result = conn.execute(delete(users).where(users.c.id == user_id))
    if result.rowcount == 0:
        raise NotFound(f"no user {user_id}")


def principal_for(db: Database, user_id: str) -> Principal | None:
    with db.read() as conn:
        row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None or row.disabled:
        return None
    refs = jsonutil.loads(row.profiles)
    return Principal("user", row.id, row.email, row.role, frozenset(refs) if refs else None)


def verify_login(db: Database, email: str, password: str) -> Principal | None:
    with db.read() as conn:
        row = conn.execute(select(users).where(users.c.email == email.strip().lower())).first()
    if row is None or row.disabled:
        # Spend the same time as a real check, so timing does not reveal which emails exist.
        try:
            _hasher.verify(_dummy_hash(), password)
        except (VerificationError, InvalidHashError):
            pass
        return None
    try:
        _hasher.verify(row.password_hash, password)
    except (VerificationError, InvalidHashError):
        return None
    return principal_for(db, row.id)


@functools.cache
def _dummy_hash() -> str:
    return _hasher.hash("not a real password")
