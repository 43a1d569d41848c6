"""Every built-in connector type passes the conformance kit plugins use."""

from __future__ import annotations

import pytest

from sluice.connectors.definition import ConnectorType
from sluice.connectors.registry import BUILTIN_MODULES, load_registry
from sluice.connectors.testing import check_definition

BUILTIN_TYPES = load_registry(entry_points=list).all()


def test_every_builtin_module_is_registered() -> None:
    assert len(BUILTIN_TYPES) == len(BUILTIN_MODULES)


@pytest.mark.parametrize("ct", BUILTIN_TYPES, ids=[ct.id for ct in BUILTIN_TYPES])
def test_definition_conforms(ct: ConnectorType) -> None:
    check_definition(ct)
