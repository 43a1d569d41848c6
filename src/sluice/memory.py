"""Process memory housekeeping once start-up is over."""

from __future__ import annotations

import ctypes
import gc


def settle_after_start() -> None:
    """Give back what start-up freed, and stop the collector rescanning what it kept.

    Imports and migrations leave freed heap that glibc keeps unless asked. Everything
    loaded so far lives as long as the process, so it is frozen out of the cyclic garbage
    collector's scans, which also run less often: the hot path allocates many
    short-lived dicts and few cycles.
    """
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
    gc.collect()
    gc.freeze()
    gc.set_threshold(50_000, 20, 20)
