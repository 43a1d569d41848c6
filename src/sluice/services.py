"""The services one Sluice process shares: database, catalog, secrets, runtime."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sluice.connectors.registry import Registry, load_registry
from sluice.crypto import SecretBox, load_secret_box
from sluice.settings import Settings
from sluice.storage.db import Database

if TYPE_CHECKING:
    from sluice.pipeline import Pipeline


@dataclass
class Services:
    settings: Settings
    db: Database
    registry: Registry
    box: SecretBox
    # Set when the process runs the data plane (collect API, routing, delivery).
    pipeline: Pipeline | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def open(cls, settings: Settings) -> Services:
        db = Database(settings.database_url)
        return cls(
            settings=settings,
            db=db,
            registry=load_registry(),
            box=load_secret_box(settings.secret_key, settings.database_url),
        )
