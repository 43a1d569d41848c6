"""Shared fixtures: a real SQLite file, the real app, HTTP through an in-process client."""

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
from tests.support.vendor import VendorMock


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(
        database_url=f"sqlite:///{tmp_path / 'sluice.db'}",
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
