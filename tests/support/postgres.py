"""Throwaway databases on the PostgreSQL server of ``SLUICE_TEST_PG_URL`` (the ``pg`` tier).

A test gets a database of its own, dropped after it. Migrating one takes about a second,
so the schema is migrated once per session into a template that every test's database is
copied from (``CREATE DATABASE ... TEMPLATE``, a few tens of milliseconds).
"""

from __future__ import annotations

import os
import secrets

import psycopg
import pytest
from sqlalchemy.engine import URL, make_url

from sluice.storage import migrate
from sluice.storage.db import Database


class PgServer:
    """Creates and drops databases through the server's maintenance database."""

    def __init__(self, url: str) -> None:
        self._admin: URL = make_url(url).set(drivername="postgresql")

    @classmethod
    def from_env(cls) -> PgServer:
        url = os.environ.get("SLUICE_TEST_PG_URL")
        if not url:
            pytest.fail("SLUICE_TEST_PG_URL is not set: run `make test-pg`")
        return cls(url)

    def url(self, name: str) -> str:
        return self._admin.set(database=name).render_as_string(hide_password=False)

    def _execute(self, sql: str) -> None:
        dsn = self._admin.render_as_string(hide_password=False)
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(sql)

    def create(self, prefix: str = "sluice_test", template: str | None = None) -> str:
        """A new database (empty, or a copy of ``template``); returns its name."""
        name = f"{prefix}_{secrets.token_hex(4)}"
        copy = f' TEMPLATE "{template}"' if template else ""
        self._execute(f'CREATE DATABASE "{name}"{copy}')
        return name

    def create_migrated_template(self) -> str:
        name = self.create("sluice_template")
        db = Database(self.url(name))
        try:
            migrate.upgrade(db)
        finally:
            # A template must have no open connection while it is copied.
            db.dispose()
        return name

    def drop(self, name: str) -> None:
        self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
