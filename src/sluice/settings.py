"""Settings from flags and the environment, in one place."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_DATABASE_URL = "sqlite:///sluice.db"


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def _env_float(name: str, default: float) -> float:
    value = os.environ.get(name)
    return float(value) if value else default


@dataclass
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    secret_key: str | None = None
    allow_private_destinations: bool = False
    # Collect API limits (SPEC §3).
    max_event_bytes: int = 1_000_000
    max_bulk_bytes: int = 4_000_000
    max_bulk_events: int = 1000
    max_depth: int = 32
    # Accepted events not yet routed; over this the collect API answers 503.
    queue_bound: int = 200_000
    # Group commit: how long the writer waits for more jobs after the first. 0: none; jobs
    # that queue while a transaction commits go together in the next (docs/delivery.md).
    commit_window_ms: float = 0.0
    event_retention_days: float = 7.0
    error_retention_days: float = 30.0
    # Reloading the compiled configuration after a change in another process.
    config_poll_seconds: float = 1.0
    # How long a claimed delivery stays leased to a process before others may take it.
    lease_seconds: float = 60.0
    # PostgreSQL: how often routing and config reloading look for work nobody notified
    # them of (LISTEN/NOTIFY wakes them at once; this covers a lost listening connection).
    poll_fallback_seconds: float = 2.0
    # PostgreSQL: rows per queue dataset (partition) of events and of deliveries; drained
    # datasets are dropped whole (sluice.storage.datasets).
    dataset_rows: int = 500_000
    run_workers: bool = True
    demo: bool = False
    # AudienceStream (docs/audiences.md): the size cap of one visitor profile's JSON, the
    # memory budget of the profile cache, and, for tests only, a factor on visit lengths.
    visitor_profile_max_bytes: int = 400_000
    visitor_cache_mb: float = 64.0
    visit_timeout_scale: float = 1.0
    extra: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        settings = cls(
            database_url=os.environ.get("SLUICE_DATABASE_URL") or DEFAULT_DATABASE_URL,
            secret_key=os.environ.get("SLUICE_SECRET_KEY") or None,
            allow_private_destinations=_env_flag("SLUICE_ALLOW_PRIVATE_DESTINATIONS"),
            max_event_bytes=_env_int("SLUICE_MAX_EVENT_BYTES", 1_000_000),
            max_bulk_bytes=_env_int("SLUICE_MAX_BULK_BYTES", 4_000_000),
            max_bulk_events=_env_int("SLUICE_MAX_BULK_EVENTS", 1000),
            queue_bound=_env_int("SLUICE_QUEUE_BOUND", 200_000),
            commit_window_ms=_env_float("SLUICE_COMMIT_WINDOW_MS", 0.0),
            event_retention_days=_env_float("SLUICE_EVENT_RETENTION_DAYS", 7.0),
            error_retention_days=_env_float("SLUICE_ERROR_RETENTION_DAYS", 30.0),
            visitor_profile_max_bytes=_env_int("SLUICE_VISITOR_PROFILE_MAX_BYTES", 400_000),
            visitor_cache_mb=_env_float("SLUICE_VISITOR_CACHE_MB", 64.0),
            visit_timeout_scale=_env_float("SLUICE_VISIT_TIMEOUT_SCALE", 1.0),
            lease_seconds=_env_float("SLUICE_LEASE_SECONDS", 60.0),
            poll_fallback_seconds=_env_float("SLUICE_POLL_FALLBACK_SECONDS", 2.0),
            dataset_rows=_env_int("SLUICE_PG_DATASET_ROWS", 500_000),
        )
        for key, value in overrides.items():
            if value is not None:
                setattr(settings, key, value)
        return settings
