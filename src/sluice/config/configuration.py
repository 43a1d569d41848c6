"""A connector's configuration: checked against its type's fields, secrets split out.

The draft keeps non-secret values as JSON and secret values in one encrypted blob. A
request may send the mask ``"********"`` back for a secret (what it was shown): that keeps
the stored value, like omitting it; ``null`` clears it.
"""

from __future__ import annotations

from typing import Any

from sluice.connectors.definition import ConnectorType, Field
from sluice.connectors.helpers import is_http_url
from sluice.crypto import MASK
from sluice.errors import ValidationFailed

MAX_INTEGER = 2**53 - 1


def _check_value(field: Field, value: Any, path: str) -> Any:
    kind = field.type
    if kind in ("string", "text", "url"):
        if not isinstance(value, str):
            raise ValidationFailed.field(path, "must be text")
        if kind == "url" and value.strip() and not is_http_url(value.strip()):
            raise ValidationFailed.field(path, "must be an absolute http:// or https:// URL")
        value = value.strip() if kind != "text" else value
    elif kind == "number":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValidationFailed.field(path, "must be a number")
    elif kind == "integer":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValidationFailed.field(path, "must be a whole number")
        if abs(value) > MAX_INTEGER:
            # Stored as JSON, which holds whole numbers up to 2^53 - 1 exactly.
            raise ValidationFailed.field(path, f"must be a whole number of at most {MAX_INTEGER}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            raise ValidationFailed.field(path, "must be true or false")
    elif kind in ("map", "object"):
        if not isinstance(value, dict):
            raise ValidationFailed.field(path, "must be an object")
    elif kind == "list" and not isinstance(value, list):
        raise ValidationFailed.field(path, "must be a list")
    if field.enum is not None and value not in field.enum:
        raise ValidationFailed.field(path, f"must be one of {', '.join(field.enum)}")
    return value


def merge(
    ct: ConnectorType,
    plain: dict[str, Any],
    secrets: dict[str, Any],
    changes: Any,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``changes`` merged key by key into (non-secret values, secret values).

    An unknown key is a 422; ``null`` removes a value (a non-secret falls back to its
    default); an omitted key, or a secret sent back as ``"********"``, is kept.
    """
    if changes is None:
        changes = {}
    if not isinstance(changes, dict):
        raise ValidationFailed.field("configuration", "must be an object")
    fields = {f.name: f for f in ct.all_configuration()}
    new_plain = dict(plain)
    new_secrets = dict(secrets)
    for key, value in changes.items():
        path = f"configuration.{key}"
        field = fields.get(key)
        if field is None:
            known = ", ".join(fields) or "none"
            raise ValidationFailed(
                f"{path}: unknown field of {ct.name} (fields: {known})",
                [{"field": path, "message": "unknown field"}],
            )
        target = new_secrets if field.secret else new_plain
        if field.secret and value == MASK:
            continue
        if value is None or (field.secret and value == ""):
            target.pop(key, None)
            continue
        target[key] = _check_value(field, value, path)
    return new_plain, new_secrets


def missing_required(
    ct: ConnectorType, plain: dict[str, Any], secrets: dict[str, Any]
) -> list[str]:
    """Required fields without a value or a default."""
    missing = []
    for field in ct.all_configuration():
        if not field.required or field.default is not None:
            continue
        value = (secrets if field.secret else plain).get(field.name)
        if value is None or (isinstance(value, str) and not value.strip()):
            missing.append(field.name)
    return missing


def require_complete(ct: ConnectorType, plain: dict[str, Any], secrets: dict[str, Any]) -> None:
    missing = missing_required(ct, plain, secrets)
    if missing:
        fields = [f"configuration.{name}" for name in missing]
        raise ValidationFailed(
            f"{', '.join(fields)}: required configuration missing",
            [{"field": f, "message": "is required"} for f in fields],
        )
