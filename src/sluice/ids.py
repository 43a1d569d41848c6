"""Identifiers: short, prefixed, random; event ids are time-ordered UUIDs (version 7)."""

from __future__ import annotations

import os
import random
import secrets
import time

_rng = random.Random(os.urandom(32))
_pid = os.getpid()
_VERSION_7 = 0x7 << 76
_VARIANT = 0b10 << 62


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_event_id() -> str:
    """A UUID v7 (RFC 9562), as text: the Unix time in milliseconds, then 74 random bits.

    Time-ordered ids keep the unique index on ``events.id`` appending at its end, as the
    rows do, instead of writing a random page of it for every event: that was most of the
    pages a collect commit wrote (docs/performance.md). Ids drawn in the same millisecond
    are not ordered among themselves; nothing relies on that. The random bits come from a
    per-process generator seeded from the OS: an event id must be unique, not secret, and
    ``os.urandom`` per id would make a system call on the collect API's hottest line.
    """
    global _rng, _pid
    if os.getpid() != _pid:  # a forked child must not repeat its parent's ids
        _rng, _pid = random.Random(os.urandom(32)), os.getpid()
    bits = _rng.getrandbits(74)
    value = (
        (time.time_ns() // 1_000_000) << 80
        | _VERSION_7
        | (bits >> 62) << 64
        | _VARIANT
        | (bits & ((1 << 62) - 1))
    )
    h = f"{value:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
