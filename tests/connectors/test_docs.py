"""Every built-in connector type, action and field is documented.

The guide ``docs/connectors.md`` covers the built-in Webhook and Slack types; each vendor
connector has its own page, ``docs/connectors/<id>.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from sluice.connectors.definition import DELIVERY_FIELDS, ConnectorType
from sluice.connectors.registry import load_registry

DOCS = Path(__file__).resolve().parents[2] / "docs"
GUIDE = DOCS / "connectors.md"


def doc_for(ct: ConnectorType) -> Path:
    page = DOCS / "connectors" / f"{ct.id}.md"
    return page if page.exists() else GUIDE


BUILTIN_TYPES = load_registry(entry_points=list).all()


@pytest.mark.parametrize("ct", BUILTIN_TYPES, ids=[ct.id for ct in BUILTIN_TYPES])
def test_builtin_type_is_documented(ct: ConnectorType) -> None:
    page = doc_for(ct)
    text = page.read_text(encoding="utf-8")
    names = [ct.id, *(f.name for f in ct.configuration)]
    for action in ct.actions:
        names.extend([action.id, *(p.name for p in action.parameters)])
    missing = [name for name in names if f"`{name}`" not in text]
    assert not missing, f"{page.relative_to(DOCS.parent)} does not mention {missing}"


def test_every_vendor_page_is_linked_from_the_guide() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    for page in sorted((DOCS / "connectors").glob("*.md")):
        assert f"connectors/{page.name}" in text, f"docs/connectors.md does not link {page.name}"


def test_delivery_fields_are_documented() -> None:
    text = GUIDE.read_text(encoding="utf-8")
    missing = [f.name for f in DELIVERY_FIELDS if f"`{f.name}`" not in text]
    assert not missing, f"docs/connectors.md does not mention {missing}"
