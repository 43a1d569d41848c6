"""Shared fixtures: a real database, the real app, HTTP through an in-process client.

The database is a SQLite file. The suites in ``PG_SUITES`` run each test that uses the
``settings`` fixture a second time on PostgreSQL: ``backend`` is parametrised with
``sqlite`` and ``postgresql``, the latter marked ``pg`` so that only ``make test-pg`` runs
it. A test that checks SQLite itself (its files, its pragmas) is marked
``sqlite_only(reason=...)`` and runs once, on SQLite.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sluice.app import create_app
from sluice.auth import tokens
from sluice.services import Services
from sluice.settings import Settings
from tests.support.postgres import PgServer
from tests.support.vendor import VendorMock

TESTS = Path(__file__).parent
PG_SUITES = frozenset({"api", "audiences", "collect", "config", "delivery", "reporting", "storage"})
BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.pg),
]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("sqlite_only"):
        return
    suite = metafunc.definition.path.relative_to(TESTS).parts[0]
    if suite in PG_SUITES:
        metafunc.parametrize("backend", BACKENDS, indirect=True)


@pytest.fixture
def backend(request: pytest.FixtureRequest) -> str:
    """``sqlite`` or ``postgresql``; SQLite unless the test is parametrised."""
    return str(getattr(request, "param", "sqlite"))


@pytest.fixture(scope="session")
def pg_server() -> PgServer:
    return PgServer.from_env()


@pytest.fixture(scope="session")
def pg_template(pg_server: PgServer) -> Iterator[str]:
    """A database migrated to the newest schema, once per session, to copy from."""
    name = pg_server.create_migrated_template()
    yield name
    pg_server.drop(name)


@pytest.fixture
def pg_url(pg_server: PgServer) -> Iterator[str]:
    """A new, empty PostgreSQL database of the test's own."""
    name = pg_server.create()
    yield pg_server.url(name)
    pg_server.drop(name)


@pytest.fixture
def migrated_pg_url(pg_server: PgServer, pg_template: str) -> Iterator[str]:
    """A new PostgreSQL database of the test's own, at the newest schema."""
    name = pg_server.create(template=pg_template)
    yield pg_server.url(name)
    pg_server.drop(name)


@pytest.fixture
def database_url(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if backend == "postgresql":
        return str(request.getfixturevalue("migrated_pg_url"))
    return f"sqlite:///{tmp_path / 'sluice.db'}"


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        secret_key="test-secret-key",
        allow_private_destinations=True,
        commit_window_ms=1.0,
    )


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    services = Services.open(settings)
    yield services
    services.db.dispose()


@pytest.fixture
def client(services: Services) -> Iterator[TestClient]:
    app = create_app(services=services)
    with TestClient(app) as test_client:
        yield test_client


class Api:
    """HTTP calls to the management API with one token; paths are relative to /api/v1."""

    def __init__(self, client: TestClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def _url(self, path: str) -> str:
        if path.startswith(("/api/", "/event", "/bulk-event", "/healthz", "/readyz", "/metrics")):
            return path
        return "/api/v1" + (path if path.startswith("/") else "/" + path)

    def request(self, method: str, path: str, **kwargs: Any) -> Any:
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.request(method, self._url(path), headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("POST", path, json=json, **kwargs)

    def patch(self, path: str, json: Any = None, **kwargs: Any) -> Any:
        return self.request("PATCH", path, json=json, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Any:
        return self.request("DELETE", path, **kwargs)


def make_token(services: Services, role: str = "admin", profiles: list[str] | None = None) -> str:
    _, token = tokens.create_token(services.db, f"test-{role}", role, profiles)
    return token


@pytest.fixture
def api(client: TestClient, services: Services) -> Api:
    return Api(client, make_token(services, "admin"))


@pytest.fixture
def profile(api: Api) -> str:
    """Creates acme/main and returns its API prefix, e.g. ``/profiles/acme/main``."""
    response = api.post("/profiles", {"account": "acme", "profile": "main"})
    assert response.status_code == 201, response.text
    return "/profiles/acme/main"


@pytest.fixture
def vendor() -> Iterator[VendorMock]:
    mock = VendorMock().start()
    yield mock
    mock.stop()
