"""docs/connectors.md documents every built-in connector type, action and field."""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.connectors.definition import DELIVERY_FIELDS, ConnectorType
from sluice.connectors.registry import load_registry

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "connectors.md"
BUILTIN_TYPES = load_registry(entry_points=list).all()


@pytest.mark.parametrize("ct", BUILTIN_TYPES, ids=[ct.id for ct in BUILTIN_TYPES])
def test_builtin_type_is_documented(ct: ConnectorType) -> None:
    text = GUIDE.read_text(encoding="utf-8")
    names = [ct.id, *(f.name for f in ct.configuration)]
    for action in ct.actions:
        names.extend([action.id, *(p.name for p in action.parameters)])
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"docs/connectors.md does not mention {missing}"


def test_delivery_fields_are_documented() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    missing = [f.name for f in DELIVERY_FIELDS if f"`{f.name}`" not in text]
    assert not missing, f"docs/connectors.md does not mention {missing}"
