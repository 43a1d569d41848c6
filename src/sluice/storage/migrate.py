"""Schema migrations with Alembic (imported only here, to keep workers small)."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import inspect
from sqlalchemy.exc import DBAPIError

from sluice.settings import Settings
from sluice.storage import datasets
from sluice.storage.db import Database

log = logging.getLogger("sluice.storage")

MIGRATIONS = Path(__file__).parent / "migrations"


def _config(db: Database) -> object:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", db.url.replace("%", "%%"))
    cfg.attributes["engine"] = db.engine
    return cfg


def upgrade(db: Database, dataset_rows: int | None = None) -> None:
    """Bring the schema to the newest revision; a no-op when it is already there.

    On PostgreSQL, also make the first queue datasets (``sluice.storage.datasets``) of
    ``dataset_rows`` rows (``SLUICE_PG_DATASET_ROWS``), so that events stored before any
    process keeps them ahead do not all land in the default partition.
    """
    from alembic import command

    command.upgrade(_config(db), "head")  # type: ignore[arg-type]
    if not db.is_sqlite:
        rows = dataset_rows or Settings.from_env().dataset_rows
        try:
            with db.begin() as conn:
                datasets.ensure_ahead(conn, rows)
        except DBAPIError:
            # Busy (a lock timeout): the running processes keep the datasets ahead anyway.
            log.warning("could not make the first queue datasets now", exc_info=True)


def head_revision() -> str:
    from alembic.script import ScriptDirectory

    return str(ScriptDirectory(str(MIGRATIONS)).get_current_head())


def current_revision(db: Database) -> str | None:
    with db.engine.connect() as conn:
        if not inspect(conn).has_table("alembic_version"):
            return None
        row = conn.exec_driver_sql("SELECT version_num FROM alembic_version").first()
        return str(row[0]) if row else None


def is_current(db: Database) -> bool:
    """Whether the schema is at the newest revision (read without importing Alembic)."""
    current = current_revision(db)
    if current is None:
        return False
    versions = MIGRATIONS / "versions"
    revisions = sorted(p.stem.split("_", 1)[0] for p in versions.glob("*.py"))
    return bool(revisions) and current == revisions[-1]
