"""Connector types as the catalog API shows them (SPEC §4 ``GET /api/v1/catalog``)."""

from __future__ import annotations

import base64
import hashlib
from typing import Any
from xml.sax.saxutils import escape

from sluice.connectors.definition import ActionType, ConnectorType, Field

# Background colours for generated icons; a type always gets the same one.
_PALETTE = ("#2b3a55", "#0f766e", "#7c3aed", "#b45309", "#be123c", "#1d4ed8", "#4d7c0f")


def generic_icon_svg(ct: ConnectorType) -> str:
    """A rounded square with the type's initial, for types that ship no icon."""
    digest = hashlib.sha256(ct.id.encode()).digest()
    colour = _PALETTE[digest[0] % len(_PALETTE)]
    initial = escape((ct.name.strip() or ct.id or "?")[0].upper())
    return (
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">'
        f'<rect width="64" height="64" rx="14" fill="{colour}"/>'
        '<text x="32" y="43" text-anchor="middle" font-family="Helvetica, Arial, sans-serif" '
        f'font-size="30" font-weight="700" fill="#ffffff">{initial}</text></svg>'
    )


def icon_data_uri(ct: ConnectorType) -> str:
    svg = ct.icon_svg.strip() or generic_icon_svg(ct)
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode()).decode("ascii")


def field_json(field: Field) -> dict[str, Any]:
    return field.as_json()


def action_json(action: ActionType) -> dict[str, Any]:
    return {
        "id": action.id,
        "name": action.name,
        "description": action.description,
        # A webhook-style action has none of its own: the user picks them per action.
        "consent_categories": [] if action.user_consent else list(action.consent_categories),
        "data_types": list(action.data_types),
        "batching": action.batching.as_json() if action.batching is not None else None,
        "idempotent": action.idempotent,
        "parameters": [field_json(p) for p in action.parameters],
    }


def summary_json(ct: ConnectorType) -> dict[str, Any]:
    """One entry of ``GET /api/v1/catalog``."""
    return {
        "id": ct.id,
        "name": ct.name,
        "description": ct.description,
        "icon": icon_data_uri(ct),
        "data_types": list(ct.data_types),
        "action_count": len(ct.actions),
    }


def detail_json(ct: ConnectorType) -> dict[str, Any]:
    """``GET /api/v1/catalog/{id}``: the summary page of one type."""
    return {
        "id": ct.id,
        "name": ct.name,
        "description": ct.description,
        "what_you_need": list(ct.what_you_need),
        "data_types": list(ct.data_types),
        "resources": [
            {"title": r.title, "url": r.url, "internal": r.internal} for r in ct.resources
        ],
        "icon": icon_data_uri(ct),
        "configuration": [field_json(f) for f in ct.all_configuration()],
        "actions": [action_json(a) for a in ct.actions],
    }
