"""The real ``sluice`` command, run as a subprocess in a fresh folder."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
import pytest

from sluice.cli import cli
from sluice.storage.migrate import head_revision


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env["PYTHONUNBUFFERED"] = "1"
    return env


def sluice(cwd: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "sluice", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    return lines[0]


def test_migrate_is_idempotent(tmp_path: Path) -> None:
    first = sluice(tmp_path, "migrate")
    assert first.returncode == 0, first.stderr
    assert head_revision() in first.stdout
    assert (tmp_path / "sluice.db").exists()
    second = sluice(tmp_path, "migrate")
    assert second.returncode == 0, second.stderr
    assert "up to date" in second.stdout
    assert head_revision() in second.stdout


def test_tokens_create_list_revoke(tmp_path: Path) -> None:
    # No migrate first: a fresh SQLite file is migrated by the command itself.
    created = sluice(
        tmp_path, "tokens", "create", "--name", "ci", "--role", "editor", "--profile", "acme/main"
    )
    assert created.returncode == 0, created.stderr
    token = created.stdout.strip().splitlines()[-1]
    assert token.startswith("slu_")
    assert " " not in token

    listed = sluice(tmp_path, "tokens", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    tokens = json.loads(listed.stdout)["tokens"]
    assert [(t["name"], t["role"], t["profiles"]) for t in tokens] == [
        ("ci", "editor", ["acme/main"])
    ]
    table = sluice(tmp_path, "tokens", "list")
    assert tokens[0]["id"] in table.stdout

    revoked = sluice(tmp_path, "tokens", "revoke", tokens[0]["id"])
    assert revoked.returncode == 0, revoked.stderr
    again = sluice(tmp_path, "tokens", "revoke", tokens[0]["id"])
    assert again.returncode == 1
    assert tokens[0]["id"] in _error_line(again)


def test_users_create(tmp_path: Path) -> None:
    generated = sluice(tmp_path, "users", "create", "--email", "ana@example.com", "--role", "admin")
    assert generated.returncode == 0, generated.stderr
    password = generated.stdout.strip().splitlines()[-1]
    assert len(password) >= 12
    assert " " not in password

    given = sluice(
        tmp_path,
        "users",
        "create",
        "--email",
        "bo@example.com",
        "--role",
        "viewer",
        "--password",
        "a-good-password",
    )
    assert given.returncode == 0, given.stderr
    assert "a-good-password" not in given.stdout

    duplicate = sluice(tmp_path, "users", "create", "--email", "ana@example.com", "--role", "admin")
    assert duplicate.returncode == 1
    assert "exists" in _error_line(duplicate)


def test_catalog_json(tmp_path: Path) -> None:
    result = sluice(tmp_path, "catalog", "--json")
    assert result.returncode == 0, result.stderr
    types = {t["id"]: t for t in json.loads(result.stdout)["types"]}
    assert {"webhook", "slack"} <= set(types)
    assert set(types["slack"]) == {
        "id",
        "name",
        "description",
        "icon",
        "data_types",
        "action_count",
    }
    table = sluice(tmp_path, "catalog")
    assert table.returncode == 0
    assert "Webhook" in table.stdout


@pytest.mark.parametrize(
    "args",
    [
        ("tokens", "create", "--name", "x"),
        ("tokens", "create", "--name", "x", "--role", "owner"),
        ("no-such-command",),
        ("serve", "--port", "not-a-port"),
    ],
    ids=["missing-option", "bad-choice", "unknown-command", "bad-port"],
)
def test_usage_errors_exit_2(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = sluice(tmp_path, *args)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (("migrate", "--database", "mysql://u@h/db"), "unsupported database"),
        (("tokens", "list", "--database", "sqlite:////no/such/folder/x.db"), "does not exist"),
        (("tokens", "create", "--name", "x", "--role", "admin", "--profile", "acme"), "profiles"),
        (("users", "create", "--email", "a@b.c", "--role", "admin", "--password", "short"), "8"),
    ],
    ids=["unsupported-db", "missing-folder", "bad-profile", "short-password"],
)
def test_errors_exit_1_with_one_line(tmp_path: Path, args: tuple[str, ...], expected: str) -> None:
    result = sluice(tmp_path, *args)
    assert result.returncode == 1, result.stderr
    line = _error_line(result)
    assert line.startswith("Error: ")
    assert expected in line


def test_database_from_environment(tmp_path: Path) -> None:
    env = _env()
    env["SLUICE_DATABASE_URL"] = f"sqlite:///{tmp_path / 'other.db'}"
    result = subprocess.run(
        [sys.executable, "-m", "sluice", "migrate"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "other.db").exists()
    assert not (tmp_path / "sluice.db").exists()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _http(method: str, url: str, token: str | None = None, body: Any = None) -> tuple[int, Any]:
    """One request with the standard library: (status, parsed JSON or None)."""
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            raw = response.read()
            return response.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as exc:
        raw = exc.read()
        exc.close()
        return exc.code, json.loads(raw) if raw else None


@contextmanager
def _serving(cwd: Path, *args: str) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """``sluice serve`` on a free port, up (``/healthz`` answers); SIGTERM at the end."""
    port = _free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice", "serve", "--port", str(port), *args],
        cwd=cwd,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, process.communicate()
            try:
                if _http("GET", f"{base}/healthz")[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "sluice serve did not come up in 30 s"
            time.sleep(0.1)
        yield base, process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
            raise


def test_serve_answers_the_api_and_stops_on_sigterm(tmp_path: Path) -> None:
    created = sluice(tmp_path, "tokens", "create", "--name", "t", "--role", "admin")
    token = created.stdout.strip().splitlines()[-1]
    with _serving(tmp_path) as (base, process):
        status, body = _http("POST", f"{base}/api/v1/profiles", token, {"account": "acme"})
        assert status == 201, body
        status, body = _http("GET", f"{base}/api/v1/profiles", token)
        assert [p["account"] for p in body["profiles"]] == ["acme"]
        assert _http("GET", f"{base}/api/v1/profiles")[0] == 401
        process.terminate()
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_serve_demo_prints_login(tmp_path: Path) -> None:
    with _serving(tmp_path, "--demo", "--no-workers") as (_base, process):
        process.terminate()
        stdout, _ = process.communicate(timeout=30)
    assert "admin@demo.local" in stdout
    assert "demo/main" in stdout


def test_serve_refuses_an_unusable_database(tmp_path: Path) -> None:
    result = sluice(tmp_path, "serve", "--database", "sqlite:////no/such/folder/x.db")
    assert result.returncode == 1
    assert "does not exist" in _error_line(result)


def test_worker_runs_until_sigterm(tmp_path: Path) -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice", "worker"],
        cwd=tmp_path,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # blocks until the worker says it runs
        assert "worker running" in line, process.communicate(timeout=10)
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, stderr
    assert "worker stopped" in stdout
    assert (tmp_path / "sluice.db").exists()


def _commands(group: click.Group, prefix: str = "sluice") -> Iterator[tuple[str, click.Command]]:
    for name, command in sorted(group.commands.items()):
        path = f"{prefix} {name}"
        if isinstance(command, click.Group):
            yield from _commands(command, path)
        else:
            yield path, command


def test_every_command_and_option_is_documented() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "cli.md").read_text()
    missing = []
    for path, command in _commands(cli):
        if f"`{path}" not in docs and f"\n{path}" not in docs:
            missing.append(path)
        for param in command.params:
            for opt in getattr(param, "opts", []):
                if opt.startswith("--") and opt not in docs:
                    missing.append(f"{path} {opt}")
    assert not missing, f"undocumented in docs/cli.md: {missing}"


@pytest.mark.pg
def test_postgresql_needs_sluice_migrate(tmp_path: Path, pg_url: str) -> None:
    for args in (("serve", "--port", str(_free_port())), ("worker",), ("tokens", "list")):
        result = sluice(tmp_path, *args, "--database", pg_url)
        assert result.returncode == 1, result.stderr
        assert "sluice migrate" in _error_line(result)
    assert sluice(tmp_path, "migrate", "--database", pg_url).returncode == 0
    created = sluice(
        tmp_path, "tokens", "create", "--name", "pg", "--role", "admin", "--database", pg_url
    )
    assert created.returncode == 0, created.stderr
    assert created.stdout.strip().splitlines()[-1].startswith("slu_")
