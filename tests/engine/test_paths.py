from __future__ import annotations

from typing import Any

import pytest

from sluice.engine.paths import MISSING, compile_path, get_path, path_problem

EVENT: dict[str, Any] = {
    "tealium_event": "purchase",
    "customer": {"phone": "+14155552671", "address": {"city": "Oslo"}},
    "items": [{"sku": "A1"}, {"sku": "B2"}],
    "empty": None,
    "0": "zero",
    "counts": {"3": "three"},
}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        pytest.param("tealium_event", "purchase", id="top-level"),
        pytest.param("customer.phone", "+14155552671", id="nested"),
        pytest.param("customer.address.city", "Oslo", id="deep"),
        pytest.param("items.1.sku", "B2", id="list-index"),
        pytest.param("items.0", {"sku": "A1"}, id="list-element"),
        pytest.param("empty", None, id="null-is-present"),
        pytest.param("0", "zero", id="digit-key-at-top"),
        pytest.param("counts.3", "three", id="digit-key-in-object"),
        pytest.param("nope", MISSING, id="absent"),
        pytest.param("customer.nope", MISSING, id="absent-nested"),
        pytest.param("items.5.sku", MISSING, id="index-out-of-range"),
        pytest.param("items.x", MISSING, id="non-index-into-list"),
        pytest.param("tealium_event.x", MISSING, id="into-a-string"),
        pytest.param("empty.x", MISSING, id="into-null"),
    ],
)
def test_get_path(path: str, expected: Any) -> None:
    assert get_path(EVENT, path) == expected
    assert compile_path(path)(EVENT) == expected


def test_missing_is_falsy_singleton() -> None:
    assert not MISSING
    assert repr(MISSING) == "MISSING"


@pytest.mark.parametrize(
    "path",
    [
        pytest.param("", id="empty"),
        pytest.param("a..b", id="double-dot"),
        pytest.param(".a", id="leading-dot"),
        pytest.param("a.", id="trailing-dot"),
        pytest.param(3, id="not-text"),
        pytest.param("a" * 600, id="too-long"),
    ],
)
def test_bad_paths(path: Any) -> None:
    assert path_problem(path) is not None
    if isinstance(path, str):
        with pytest.raises(ValueError, match="invalid attribute path"):
            compile_path(path)
