"""API tokens: random, shown once, stored as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from typing import Any

from sqlalchemy import select, update

from sluice import jsonutil, timeutil
from sluice.auth.principals import Principal, check_profile_refs, check_role
from sluice.errors import NotFound, ValidationFailed
from sluice.ids import new_id
from sluice.storage.db import Database
from sluice.storage.tables import tokens

TOKEN_PREFIX = "slu_"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _row_json(row: Any) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "role": row.role,
        "profiles": jsonutil.loads(row.profiles),
        "created_at": timeutil.iso(row.created_at),
        "last_used_at": timeutil.iso(row.last_used_at),
    }


def create_token(
    db: Database, name: str, role: str, profiles: list[str] | None = None
) -> tuple[dict[str, Any], str]:
    """Create a token; returns its description and the secret token (shown only now)."""
    if not name.strip():
        raise ValidationFailed.field("name", "must not be empty")
    check_role(role)
    check_profile_refs(profiles)
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = {
        "id": new_id("tok"),
        "name": name.strip(),
        "role": role,
        "token_hash": _hash(token),
        "profiles": jsonutil.dumps(profiles) if profiles else None,
        "created_at": timeutil.now(),
    }
    with db.begin() as conn:
        conn.execute(tokens.insert().values(**row))
        created = conn.execute(select(tokens).where(tokens.c.id == row["id"])).one()
    return _row_json(created), token


def list_tokens(db: Database) -> list[dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(tokens).where(tokens.c.revoked_at.is_(None)).order_by(tokens.c.created_at)
        ).all()
    return [_row_json(r) for r in rows]


def revoke_token(db: Database, token_id: str) -> None:
    with db.begin() as conn:
        result = conn.execute(
            update(tokens)
            .where(tokens.c.id == token_id, tokens.c.revoked_at.is_(None))
            .values(revoked_at=timeutil.now())
        )
    if result.rowcount == 0:
        raise NotFound(f"no token {token_id}")


def authenticate(db: Database, token: str) -> Principal | None:
    with db.read() as conn:
        row = conn.execute(
            select(tokens).where(tokens.c.token_hash == _hash(token), tokens.c.revoked_at.is_(None))
        ).first()
    if row is None:
        return None
    refs = jsonutil.loads(row.profiles)
    return Principal(
        "token", row.id, f"token:{row.name}", row.role, frozenset(refs) if refs else None
    )
