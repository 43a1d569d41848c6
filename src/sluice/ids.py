"""Identifiers: short, prefixed, random."""

from __future__ import annotations

import secrets
import uuid


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_event_id() -> str:
    return str(uuid.uuid4())
