from __future__ import annotations

from typing import Any

import pytest

from sluice.config import configuration
from sluice.connectors.definition import ConnectorType, Field
from sluice.errors import ValidationFailed

VENDOR = ConnectorType(
    id="vendor",
    name="Vendor",
    description="A test type.",
    configuration=(
        Field("api_key", "API key", required=True, secret=True),
        Field("region", "Region", required=True, enum=("eu", "us"), default="eu"),
        Field("endpoint", "Endpoint", "url"),
        Field("verbose", "Verbose", "boolean"),
        Field("extra", "Extra", "object"),
    ),
    actions=(),
)


def test_merge_splits_secrets() -> None:
    plain, secrets = configuration.merge(VENDOR, {}, {}, {"api_key": "k", "verbose": True})
    assert (plain, secrets) == ({"verbose": True}, {"api_key": "k"})


def test_merge_keeps_omitted_and_masked_secrets_and_clears_null() -> None:
    assert configuration.merge(VENDOR, {}, {"api_key": "k"}, {"region": "us"})[1] == {
        "api_key": "k"
    }
    assert configuration.merge(VENDOR, {}, {"api_key": "k"}, {"api_key": "********"})[1] == {
        "api_key": "k"
    }
    assert configuration.merge(VENDOR, {}, {"api_key": "k"}, {"api_key": None})[1] == {}
    assert configuration.merge(VENDOR, {"verbose": True}, {}, {"verbose": None})[0] == {}


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"nope": 1}, "configuration.nope"),
        ({"region": "mars"}, "configuration.region"),
        ({"endpoint": "ftp://x"}, "configuration.endpoint"),
        ({"verbose": "yes"}, "configuration.verbose"),
        ({"extra": [1]}, "configuration.extra"),
        ([1], "configuration"),
    ],
    ids=["unknown", "enum", "url", "boolean", "object", "not-an-object"],
)
def test_merge_refuses(changes: Any, field: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        configuration.merge(VENDOR, {}, {}, changes)
    assert caught.value.details[0]["field"] == field


def test_required_fields_without_default_are_reported() -> None:
    assert configuration.missing_required(VENDOR, {}, {}) == ["api_key"]
    with pytest.raises(ValidationFailed) as caught:
        configuration.require_complete(VENDOR, {}, {})
    assert caught.value.details == [{"field": "configuration.api_key", "message": "is required"}]
    configuration.require_complete(VENDOR, {}, {"api_key": "k"})
