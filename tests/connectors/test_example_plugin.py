"""The example plugin package, really installed, shows up in the catalog and passes the kit.

The package is built and installed with uv (offline: its build backend, hatchling, is the
one Sluice itself is built with, so uv has it cached) into a scratch directory; a fresh
Python process with that directory on its path then finds it through its installed
entry-point metadata, exactly as an installed plugin is found in production.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "sluice-connector-example"

LOAD = """
import json
from sluice.connectors.registry import load_registry
from sluice.connectors.testing import check_definition

registry = load_registry()
ct = registry.get("example_echo")
assert ct is not None, registry.ids()
check_definition(ct)
print(json.dumps({"ids": registry.ids(), "module": type(ct).__module__}))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the example package, installed with its dist-info."""
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        pytest.skip("uv is needed to install the example package (make setup installs it)")
    target = tmp_path_factory.mktemp("site-packages")
    command = [uv, "pip", "install", "--offline", "--no-deps", "--quiet"]
    command += ["--python", sys.executable, "--target", str(target), str(EXAMPLE)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return target


def run(site: Path, *args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site), "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, timeout=60, env=env, cwd=cwd
    )


def test_the_package_installs_its_entry_point(site: Path) -> None:
    [dist_info] = site.glob("sluice_connector_example-*.dist-info")
    entry_points = (dist_info / "entry_points.txt").read_text(encoding="utf-8")
    assert "[sluice.connectors]" in entry_points
    assert "example_echo = sluice_connector_example.connector:CONNECTOR" in entry_points


def test_the_installed_plugin_is_in_the_catalog_and_conforms(site: Path) -> None:
    done = run(site, "-c", LOAD)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.strip().splitlines()[-1])
    assert "example_echo" in loaded["ids"]
    assert "webhook" in loaded["ids"]  # the built-ins are still there


def test_the_cli_lists_it(site: Path) -> None:
    done = run(site, "-c", "from sluice.cli import main; main()", "catalog", "--json")
    assert done.returncode == 0, done.stderr
    types = {t["id"]: t for t in json.loads(done.stdout)["types"]}
    assert types["example_echo"]["name"] == "Example Echo"
    assert types["example_echo"]["action_count"] == 1


def test_the_example_package_tests_pass(site: Path) -> None:
    done = run(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=EXAMPLE)
    assert done.returncode == 0, done.stdout + done.stderr
    assert " passed" in done.stdout
