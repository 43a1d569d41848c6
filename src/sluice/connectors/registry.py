"""The catalog of connector types: the built-in ones plus those installed as plugins.

Built-in types are listed in :data:`BUILTIN_MODULES`; third-party packages add theirs under
the ``sluice.connectors`` entry-point group. Nothing is imported until :func:`load_registry`
runs (when the app is created), and a broken plugin is logged and skipped, never fatal.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import logging
import types
from collections.abc import Callable, Iterable, Sequence
from typing import Protocol

from sluice.connectors.definition import ConnectorType
from sluice.connectors.validation import validate_connector_type
from sluice.errors import ConfigurationError

__all__ = [
    "BUILTIN_MODULES",
    "ENTRY_POINT_GROUP",
    "Registry",
    "load_registry",
    "validate_connector_type",
]

log = logging.getLogger("sluice.connectors")

ENTRY_POINT_GROUP = "sluice.connectors"

# Every built-in connector type, one module each; a module exposes ``CONNECTOR``.
BUILTIN_MODULES: tuple[str, ...] = (
    "sluice.connectors.catalog.webhook",
    "sluice.connectors.catalog.slack",
    "sluice.connectors.catalog.clicksend",
    "sluice.connectors.catalog.twilio",
    "sluice.connectors.catalog.google_analytics_4",
    "sluice.connectors.catalog.meta_conversions_api",
    "sluice.connectors.catalog.braze",
    "sluice.connectors.catalog.mailchimp",
    "sluice.connectors.catalog.amplitude",
    "sluice.connectors.catalog.mixpanel",
    "sluice.connectors.catalog.segment",
    "sluice.connectors.catalog.hubspot",
    "sluice.connectors.catalog.klaviyo",
    "sluice.connectors.catalog.tiktok_events_api",
    "sluice.connectors.catalog.pinterest_conversions_api",
    "sluice.connectors.catalog.amazon_sqs",
    "sluice.connectors.catalog.amazon_kinesis",
)


class EntryPointLike(Protocol):
    """What the registry needs of an entry point (``importlib.metadata.EntryPoint`` fits)."""

    @property
    def name(self) -> str: ...

    @property
    def value(self) -> str: ...

    def load(self) -> object: ...


EntryPointSource = Callable[[], Iterable[EntryPointLike]]


class Registry:
    """Connector types by id."""

    def __init__(self, connector_types: Iterable[ConnectorType] = ()) -> None:
        self._types: dict[str, ConnectorType] = {}
        for ct in connector_types:
            if ct.id in self._types:
                raise ConfigurationError(f"connector type {ct.id!r} is registered twice")
            self._types[ct.id] = ct

    def __contains__(self, type_id: object) -> bool:
        return type_id in self._types

    def __len__(self) -> int:
        return len(self._types)

    def get(self, type_id: str) -> ConnectorType | None:
        return self._types.get(type_id)

    def ids(self) -> list[str]:
        return sorted(self._types)

    def all(self) -> list[ConnectorType]:
        """Every type, sorted by name."""
        return sorted(self._types.values(), key=lambda ct: (ct.name.casefold(), ct.id))

    def search(self, q: str | None = None, data_type: str | None = None) -> list[ConnectorType]:
        """Types whose id, name, description or action names contain ``q`` (any case).

        Matches on the start of the name or id come first, then other name or id matches,
        then the rest, each group by name. ``data_type``
        keeps only types with an action for that data type (``event`` or ``visitor``).
        """
        needle = (q or "").strip().casefold()
        found: list[tuple[int, ConnectorType]] = []
        for ct in self.all():
            if data_type and data_type not in ct.data_types:
                continue
            rank = _match_rank(ct, needle)
            if rank is not None:
                found.append((rank, ct))
        found.sort(key=lambda pair: pair[0])  # stable: keeps the name order within a rank
        return [ct for _, ct in found]


def _match_rank(ct: ConnectorType, needle: str) -> int | None:
    """0: the name or id starts with it; 1: contains it; 2: a description or action does."""
    name = ct.name.casefold()
    if not needle or name.startswith(needle) or ct.id.startswith(needle):
        return 0
    if needle in name or needle in ct.id:
        return 1
    texts = [ct.description]
    for action in ct.actions:
        texts.extend((action.name, action.id))
    if any(needle in text.casefold() for text in texts):
        return 2
    return None


def _default_entry_points() -> Iterable[EntryPointLike]:
    return importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)


def _connector_of(obj: object) -> object:
    """The ConnectorType an entry point names: the object itself or a module's CONNECTOR."""
    if isinstance(obj, types.ModuleType):
        return getattr(obj, "CONNECTOR", None)
    return obj


def load_builtin(module_path: str) -> ConnectorType:
    """Import one built-in module and check its ``CONNECTOR``; a broken one is our bug."""
    ct = getattr(importlib.import_module(module_path), "CONNECTOR", None)
    problems = validate_connector_type(ct)
    if problems or not isinstance(ct, ConnectorType):
        raise ConfigurationError(f"built-in connector {module_path}: " + "; ".join(problems))
    return ct


def _load_plugin(entry_point: EntryPointLike) -> ConnectorType | None:
    label = f"{entry_point.name} = {entry_point.value}"
    try:
        ct = _connector_of(entry_point.load())
        problems = validate_connector_type(ct)
    except Exception:
        # A plugin may fail in any way while importing; it must not take Sluice down.
        log.exception("connector plugin %s failed to load; skipped", label)
        return None
    if problems or not isinstance(ct, ConnectorType):
        log.error("connector plugin %s is invalid; skipped: %s", label, "; ".join(problems))
        return None
    return ct


def load_registry(
    *,
    builtins: Sequence[str] = BUILTIN_MODULES,
    entry_points: EntryPointSource | None = None,
) -> Registry:
    """The built-in types, then every valid plugin whose id is not taken yet.

    ``entry_points`` returns the plugins' entry points (by default those installed in the
    ``sluice.connectors`` group); tests pass their own.
    """
    found: dict[str, ConnectorType] = {}
    for module_path in builtins:
        ct = load_builtin(module_path)
        if ct.id in found:
            raise ConfigurationError(f"built-in connector id {ct.id!r} is used twice")
        found[ct.id] = ct
    try:
        plugins = list((entry_points or _default_entry_points)())
    except Exception:
        log.exception("could not list the %r entry points; no plugins loaded", ENTRY_POINT_GROUP)
        plugins = []
    for entry_point in plugins:
        plugin = _load_plugin(entry_point)
        if plugin is None:
            continue
        if plugin.id in found:
            log.warning(
                "connector plugin %s = %s uses the id %r, which is taken; skipped",
                entry_point.name,
                entry_point.value,
                plugin.id,
            )
            continue
        found[plugin.id] = plugin
        log.info("connector plugin %s loaded: %s (%s)", entry_point.name, plugin.id, plugin.name)
    return Registry(found.values())
