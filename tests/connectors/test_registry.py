"""The registry: built-ins listed once, plugins from entry points, broken plugins skipped."""

from __future__ import annotations

import dataclasses
import importlib.metadata
import logging
import subprocess
import sys
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import pytest

from sluice.connectors.catalog import slack, webhook
from sluice.connectors.definition import Batching, ConnectorType, Resource
from sluice.connectors.registry import (
    BUILTIN_MODULES,
    ENTRY_POINT_GROUP,
    Registry,
    load_registry,
    validate_connector_type,
)
from sluice.errors import ConfigurationError
from tests.connectors import plugin_example

PLUGIN = plugin_example.CONNECTOR


@dataclass
class FakeEntryPoint:
    name: str
    loader: Callable[[], object]
    value: str = "fake.module:CONNECTOR"

    def load(self) -> object:
        return self.loader()


def plugins(*entry_points: FakeEntryPoint) -> Callable[[], Iterable[FakeEntryPoint]]:
    return lambda: entry_points


def _raise() -> object:
    raise ImportError("No module named 'vendor_sdk'")


TWO_BUILTINS = ("sluice.connectors.catalog.webhook", "sluice.connectors.catalog.slack")


def test_builtins_are_loaded_and_sorted_by_name() -> None:
    registry = load_registry(entry_points=list)
    names = [ct.name for ct in registry.all()]
    assert names == sorted(names, key=str.lower)
    assert {"slack", "webhook"} <= {ct.id for ct in registry.all()}
    assert registry.get("webhook") is webhook.CONNECTOR
    assert registry.get("nope") is None
    assert "slack" in registry
    assert len(registry) == len(BUILTIN_MODULES)


def test_importing_the_registry_imports_no_connector() -> None:
    code = (
        "import sys, sluice.connectors.registry\n"
        "assert not [m for m in sys.modules if m.startswith('sluice.connectors.catalog.')]"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("q", "data_type", "expected"),
    [
        (None, None, ["slack", "webhook"]),
        ("", "event", ["slack", "webhook"]),
        ("SLACK", None, ["slack"]),
        ("batched", None, ["webhook"]),
        ("post enhanced", None, ["slack"]),
        ("web", None, ["webhook", "slack"]),
        ("zzz", None, []),
        (None, "nothing", []),
    ],
    ids=[
        "all",
        "data-type",
        "any-case",
        "action-name",
        "action-words",
        "name-first",
        "none",
        "bad-data-type",
    ],
)
def test_search(q: str | None, data_type: str | None, expected: list[str]) -> None:
    registry = load_registry(builtins=TWO_BUILTINS, entry_points=list)
    assert [ct.id for ct in registry.search(q, data_type)] == expected


def test_a_plugin_connector_type_is_registered() -> None:
    registry = load_registry(
        builtins=TWO_BUILTINS, entry_points=plugins(FakeEntryPoint("echo", lambda: PLUGIN))
    )
    assert registry.get("echo_analytics") is PLUGIN
    assert [ct.id for ct in registry.all()] == ["echo_analytics", "slack", "webhook"]


def test_a_plugin_module_with_connector_is_registered() -> None:
    module = types.ModuleType("echo_plugin")
    module.CONNECTOR = PLUGIN  # type: ignore[attr-defined]
    registry = load_registry(entry_points=plugins(FakeEntryPoint("echo", lambda: module)))
    assert registry.get("echo_analytics") is PLUGIN


def test_installed_entry_points_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.metadata.EntryPoint(
        "echo", "tests.connectors.plugin_example:CONNECTOR", ENTRY_POINT_GROUP
    )
    asked: list[str] = []

    def entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        asked.append(group)
        return [real]

    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    assert load_registry().get("echo_analytics") is PLUGIN
    assert asked == ["sluice.connectors"]


def test_broken_plugins_are_logged_and_skipped(caplog: pytest.LogCaptureFixture) -> None:
    invalid = dataclasses.replace(PLUGIN, id="Bad-Id")
    clash = dataclasses.replace(PLUGIN, id="webhook")
    entry_points = plugins(
        FakeEntryPoint("missing", _raise),
        FakeEntryPoint("invalid", lambda: invalid),
        FakeEntryPoint("not_a_type", lambda: "hello"),
        FakeEntryPoint("module_without", lambda: types.ModuleType("empty")),
        FakeEntryPoint("clash", lambda: clash),
        FakeEntryPoint("echo", lambda: PLUGIN),
        FakeEntryPoint("echo_again", lambda: PLUGIN),
    )
    with caplog.at_level(logging.INFO, logger="sluice.connectors"):
        registry = load_registry(entry_points=entry_points)
    assert [i for i in registry.ids() if i in ("echo_analytics", "slack", "webhook")] == [
        "echo_analytics",
        "slack",
        "webhook",
    ]
    assert registry.get("webhook") is webhook.CONNECTOR
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(errors) == 4
    assert "vendor_sdk" in caplog.text
    assert "snake_case" in caplog.text
    assert [r.getMessage().split()[2] for r in warnings] == ["clash", "echo_again"]


def test_failing_to_list_entry_points_loads_builtins_only(caplog: pytest.LogCaptureFixture) -> None:
    def broken() -> list[FakeEntryPoint]:
        raise OSError("unreadable site-packages")

    assert load_registry(builtins=TWO_BUILTINS, entry_points=broken).ids() == ["slack", "webhook"]
    assert "unreadable site-packages" in caplog.text


@pytest.mark.parametrize(
    "builtins",
    [("sluice.connectors.helpers",), ("sluice.connectors.catalog.slack",) * 2],
    ids=["no-connector", "twice"],
)
def test_a_broken_builtin_is_a_configuration_error(builtins: tuple[str, ...]) -> None:
    with pytest.raises(ConfigurationError):
        load_registry(builtins=builtins, entry_points=list)


def test_registry_refuses_duplicate_ids() -> None:
    with pytest.raises(ConfigurationError):
        Registry([slack.CONNECTOR, slack.CONNECTOR])


# Each broken variant of the example plugin and the words its problem must contain.
ACTION = PLUGIN.actions[0]
PARAM = ACTION.parameters[0]
SECRET = PLUGIN.configuration[0]


def with_action(**changes: Any) -> ConnectorType:
    return dataclasses.replace(PLUGIN, actions=(dataclasses.replace(ACTION, **changes),))


def with_param(**changes: Any) -> ConnectorType:
    return with_action(parameters=(dataclasses.replace(PARAM, **changes),))


def with_config(**changes: Any) -> ConnectorType:
    return dataclasses.replace(PLUGIN, configuration=(dataclasses.replace(SECRET, **changes),))


INVALID = {
    "type-id": (dataclasses.replace(PLUGIN, id="EchoAnalytics"), "snake_case"),
    "no-name": (dataclasses.replace(PLUGIN, name=" "), "name is empty"),
    "no-description": (dataclasses.replace(PLUGIN, description=""), "description is empty"),
    "no-actions": (dataclasses.replace(PLUGIN, actions=()), "no action types"),
    "action-twice": (dataclasses.replace(PLUGIN, actions=(ACTION, ACTION)), "defined twice"),
    "action-id": (with_action(id="track-event"), "snake_case"),
    "param-twice": (with_action(parameters=(PARAM, PARAM)), "defined twice"),
    "param-help": (with_param(help=""), "help text is empty"),
    "param-title": (with_param(title=""), "title is empty"),
    "param-type": (with_param(type="date"), "unknown type"),
    "param-secret": (with_param(secret=True), "cannot be secret"),
    "enum-default": (with_param(enum=("a", "b"), default="c"), "not one of the enum"),
    "enum-type": (with_param(type="integer", enum=("1",)), "must be of type string"),
    "default-type": (with_param(type="integer", default="10"), "not of type integer"),
    "bool-default": (with_param(type="integer", default=True), "not of type integer"),
    "consent-unknown": (with_action(consent_categories=("ads",)), "unknown consent"),
    "consent-twice": (with_action(consent_categories=("email", "email")), "listed twice"),
    "user-consent": (with_action(user_consent=True), "leave consent_categories empty"),
    "data-types": (with_action(data_types=()), "data_types"),
    "batching": (with_action(batching=Batching(0, 1000, 10)), "max_count"),
    "batching-age": (with_action(batching=Batching(10, 1000, -1)), "max_age_seconds"),
    "build": (with_action(build=None), "build is not callable"),
    "secret-type": (with_config(type="integer"), "string or text"),
    "secret-default": (with_config(default="key"), "cannot have a default"),
    "config-clash": (
        dataclasses.replace(PLUGIN, configuration=(SECRET, SECRET)),
        "defined twice",
    ),
    "resource": (dataclasses.replace(PLUGIN, resources=(Resource("x", "docs/x"),)), "http(s) URL"),
    "icon": (dataclasses.replace(PLUGIN, icon_svg="<png/>"), "not an SVG"),
    "base-url": (dataclasses.replace(PLUGIN, base_url="api.echo.example"), "base_url"),
    "not-a-type": ("webhook", "expected a ConnectorType"),
    "not-a-field": (with_action(parameters=("url",)), "expected a Field"),
}


@pytest.mark.parametrize(("ct", "words"), INVALID.values(), ids=INVALID.keys())
def test_validate_names_the_problem(ct: object, words: str) -> None:
    problems = validate_connector_type(ct)
    assert any(words in problem for problem in problems), problems


def test_valid_types_have_no_problems() -> None:
    internal = Resource("Guide", "/docs/connectors", internal=True)
    for ct in (
        PLUGIN,
        webhook.CONNECTOR,
        slack.CONNECTOR,
        dataclasses.replace(PLUGIN, resources=(internal,)),
    ):
        assert validate_connector_type(ct) == []
