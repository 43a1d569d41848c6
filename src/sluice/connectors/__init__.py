"""The connector definition kit: what a connector type is made of.

Importing this package has no side effects; built-in and third-party types are loaded by
:func:`sluice.connectors.registry.load_registry`.
"""

from __future__ import annotations

from sluice.connectors.definition import (
    CONSENT_CATEGORIES,
    DELIVERY_FIELDS,
    ActionInput,
    ActionType,
    Batching,
    BuildContext,
    BuildFn,
    ClassifyFn,
    ConnectorType,
    DataType,
    Field,
    FieldType,
    HttpRequest,
    HttpResponse,
    Outcome,
    Resource,
    classify_status,
    default_classify,
    parse_retry_after,
)

__all__ = [
    "CONSENT_CATEGORIES",
    "DELIVERY_FIELDS",
    "ActionInput",
    "ActionType",
    "Batching",
    "BuildContext",
    "BuildFn",
    "ClassifyFn",
    "ConnectorType",
    "DataType",
    "Field",
    "FieldType",
    "HttpRequest",
    "HttpResponse",
    "Outcome",
    "Resource",
    "classify_status",
    "default_classify",
    "parse_retry_after",
]
