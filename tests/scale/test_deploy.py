"""The deployment files in ``deploy/`` parse and run the commands they say they run."""

from __future__ import annotations

import configparser
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


def _unit(name: str) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser(strict=False)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string((DEPLOY / "systemd" / name).read_text())
    return parser


@pytest.mark.parametrize(
    ("unit", "command"),
    [
        pytest.param("sluice-api@.service", "serve --no-workers", id="api"),
        pytest.param("sluice-worker@.service", "sluice worker", id="worker"),
        pytest.param("sluice-migrate.service", "sluice migrate", id="migrate"),
    ],
)
def test_systemd_units_run_sluice_with_the_shared_environment_file(unit: str, command: str) -> None:
    service = _unit(unit)["Service"]
    assert command in service["ExecStart"]
    assert service["EnvironmentFile"] == "/etc/sluice/sluice.env"
    if unit != "sluice-migrate.service":
        assert "sluice-migrate.service" in _unit(unit)["Unit"]["Requires"]


def test_systemd_units_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    names = []
    for source in (DEPLOY / "systemd").glob("*.service"):
        text = source.read_text().replace("/opt/sluice/venv/bin/sluice", "/bin/true")
        instance = source.name.replace("@.", "@1.")
        (tmp_path / source.name).write_text(text)
        if instance != source.name:
            (tmp_path / instance).symlink_to(tmp_path / source.name)
        names.append(str(tmp_path / instance))
    result = subprocess.run(
        [analyze, "verify", "--man=no", *names],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def _load_yaml(path: Path) -> Any:
    """PyYAML here, or else the system Python's (Debian's python3-yaml), or skip."""
    try:
        import yaml  # type: ignore[import-untyped,unused-ignore]
    except ImportError:
        pass
    else:
        return yaml.safe_load(path.read_text())
    for python in ("/usr/bin/python3", shutil.which("python3")):
        if python is None:
            continue
        script = "import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))"
        result = subprocess.run(
            [python, "-c", script, str(path)], capture_output=True, text=True, check=False
        )
        if result.returncode == 0:
            return json.loads(result.stdout)
    pytest.skip("no YAML parser is importable")


def test_compose_file_has_postgres_migrate_apis_and_workers() -> None:
    compose = _load_yaml(DEPLOY / "compose.yaml")
    services = compose["services"]
    assert set(services) == {"postgres", "migrate", "api-1", "api-2", "worker"}
    assert services["migrate"]["command"] == ["sluice", "migrate"]
    for name in ("api-1", "api-2"):
        assert services[name]["command"][:3] == ["sluice", "serve", "--no-workers"]
    assert services["worker"]["command"] == ["sluice", "worker"]
    for name in ("api-1", "api-2", "worker"):
        depends = services[name]["depends_on"]["migrate"]
        assert depends["condition"] == "service_completed_successfully"
        assert "SLUICE_SECRET_KEY" in services[name]["environment"]


def test_compose_file_is_plain_yaml_without_tabs() -> None:
    text = (DEPLOY / "compose.yaml").read_text()
    assert "\t" not in text
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        assert (len(line) - len(stripped)) % 2 == 0, line
