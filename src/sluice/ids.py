"""Identifiers: short, prefixed, random; event ids are UUIDs (version 4)."""

from __future__ import annotations

import os
import random
import secrets

_rng = random.Random(os.urandom(32))
_pid = os.getpid()
_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(8)}"


def new_event_id() -> str:
    """A random UUID v4, as text.

    Drawn from a per-process generator seeded from the OS: an event id must be unique,
    not secret, and ``uuid.uuid4()`` makes a system call per id that releases the GIL on
    the collect API's hottest line.
    """
    global _rng, _pid
    if os.getpid() != _pid:  # a forked child must not repeat its parent's ids
        _rng, _pid = random.Random(os.urandom(32)), os.getpid()
    h = "%032x" % ((_rng.getrandbits(128) & _VERSION_MASK) | _VERSION_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
