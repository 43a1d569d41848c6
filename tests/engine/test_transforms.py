from __future__ import annotations

from typing import Any

import pytest

from sluice.engine.transforms import (
    TRANSFORM_NAMES,
    apply_transforms,
    compile_transforms,
    validate_transforms,
)
from sluice.errors import ValidationFailed

SHA_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

CASES: list[tuple[str, Any, Any, str]] = [
    ("trim", "  a b  ", "a b", "trim"),
    ("trim", 42, "42", "trim-number"),
    ("lowercase", "ÀB", "àb", "lowercase"),
    ("lowercase", True, "true", "lowercase-bool"),
    ("uppercase", "ab", "AB", "uppercase"),
    ("sha256", "abc", SHA_ABC, "sha256"),
    ("md5", "abc", "900150983cd24fb0d6963f7d28e17f72", "md5"),
    ("base64", "abc", "YWJj", "base64"),
    ("base64", "é", "w6k=", "base64-utf8"),
    ("url_encode", "a b&c=d/é", "a+b%26c%3Dd%2F%C3%A9", "url-encode"),
    ("e164", "+1 (415) 555-2671", "+14155552671", "e164-plus"),
    ("e164", "0044 20 7946 0958", "+442079460958", "e164-00"),
    ("e164", "+44 (0)20 7946 0958", "+442079460958", "e164-trunk-zero"),
    ("e164", " +47.987.65.432 ", "+4798765432", "e164-dots"),
    ("to_number", "42", 42, "to-number-int"),
    ("to_number", " 4.5 ", 4.5, "to-number-float"),
    ("to_number", "-1e3", -1000.0, "to-number-exp"),
    ("to_number", 7, 7, "to-number-number"),
    ("to_number", True, 1, "to-number-bool"),
    ("to_string", 42, "42", "to-string-int"),
    ("to_string", 1.5, "1.5", "to-string-float"),
    ("to_string", False, "false", "to-string-bool"),
    ("to_string", ["a", 1], '["a",1]', "to-string-list-as-json"),
    ("to_string", {"a": 1}, '{"a":1}', "to-string-object-as-json"),
    ("to_boolean", "Yes", True, "to-boolean-yes"),
    ("to_boolean", "off", False, "to-boolean-off"),
    ("to_boolean", "1", True, "to-boolean-1"),
    ("to_boolean", 0, False, "to-boolean-0"),
    ("to_boolean", True, True, "to-boolean-bool"),
    ("unix_timestamp", "2024-05-01T12:00:00Z", 1714564800, "unix-iso-z"),
    ("unix_timestamp", "2024-05-01T14:00:00+02:00", 1714564800, "unix-iso-offset"),
    ("unix_timestamp", "2024-05-01T12:00:00", 1714564800, "unix-iso-naive-utc"),
    ("unix_timestamp", "2024-05-01", 1714521600, "unix-date"),
    ("unix_timestamp", 1714564800.9, 1714564800, "unix-float"),
    ("unix_timestamp", "1714564800", 1714564800, "unix-numeric-text"),
    ("unix_timestamp", 1714564800123, 1714564800, "unix-milliseconds"),
]


@pytest.mark.parametrize(
    ("name", "value", "expected"), [pytest.param(*c[:3], id=c[3]) for c in CASES]
)
def test_transform(name: str, value: Any, expected: Any) -> None:
    assert apply_transforms(value, [name]) == expected


def test_every_transform_is_covered() -> None:
    assert {c[0] for c in CASES} == set(TRANSFORM_NAMES)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        pytest.param("e164", "0612 345 678", "has no country code", id="e164-national"),
        pytest.param("e164", "4155552671", "has no country code", id="e164-no-prefix"),
        pytest.param("e164", 4155552671, "expected a phone number as text", id="e164-number"),
        pytest.param("e164", "+1 415 CALL-NOW", "only digits", id="e164-letters"),
        pytest.param("e164", "+123", "has 3 digits", id="e164-too-short"),
        pytest.param("e164", "+1234567890123456", "has 16 digits", id="e164-too-long"),
        pytest.param("e164", "+0123456789", "cannot start with 0", id="e164-zero-country"),
        pytest.param("to_number", "12abc", "expected a number, got text", id="to-number-text"),
        pytest.param("to_number", "", "got empty text", id="to-number-empty"),
        pytest.param("to_number", "nan", "expected a number", id="to-number-nan"),
        pytest.param("to_boolean", "maybe", "expected a boolean", id="to-boolean-other"),
        pytest.param("unix_timestamp", "yesterday", "ISO 8601", id="unix-bad-text"),
        pytest.param("unix_timestamp", True, "got a boolean", id="unix-bool"),
        pytest.param("sha256", {"a": 1}, "expected text, got an object", id="hash-object"),
    ],
)
def test_transform_errors(name: str, value: Any, message: str) -> None:
    with pytest.raises(ValueError, match=f"transform '{name}'") as caught:
        apply_transforms(value, [name])
    assert message in str(caught.value)


def test_errors_do_not_quote_the_value() -> None:
    with pytest.raises(ValueError, match="no country code") as caught:
        apply_transforms("0612 345 678", ["e164"])
    assert "0612" not in str(caught.value)


def test_chain_in_order() -> None:
    assert apply_transforms("  Ann@Example.COM ", ["trim", "lowercase", "sha256"]) == (
        apply_transforms("ann@example.com", ["sha256"])
    )
    assert apply_transforms("abc", ["sha256", "uppercase"]) == SHA_ABC.upper()


def test_lists_are_transformed_element_wise() -> None:
    assert apply_transforms([" A ", None, "B"], ["trim", "lowercase"]) == ["a", None, "b"]
    assert apply_transforms(["1", "2"], ["to_number"]) == [1, 2]
    assert apply_transforms(["a"], ["to_string"]) == '["a"]'


def test_null_passes_through() -> None:
    assert apply_transforms(None, ["trim", "e164", "to_number"]) is None


def test_compile_transforms() -> None:
    assert compile_transforms([]) is None
    chain = compile_transforms(["trim", "uppercase"])
    assert chain is not None
    assert chain(" x ") == "X"
    with pytest.raises(ValueError, match="unknown transform 'nope'"):
        compile_transforms(["nope"])


def test_validate_transforms() -> None:
    assert validate_transforms(None) == []
    assert validate_transforms(["trim", "sha256"]) == ["trim", "sha256"]


@pytest.mark.parametrize(
    ("raw", "field", "message"),
    [
        pytest.param("trim", "mappings[0].transforms", "must be a list", id="not-a-list"),
        pytest.param(
            ["trim", "sha265"],
            "mappings[0].transforms[1]",
            "unknown transform 'sha265' (did you mean 'sha256'?); valid transforms: trim,",
            id="unknown-name",
        ),
        pytest.param([3], "mappings[0].transforms[0]", "unknown transform 3", id="not-a-name"),
    ],
)
def test_validate_transforms_errors(raw: Any, field: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        validate_transforms(raw, "mappings[0].transforms")
    assert caught.value.details[0]["field"] == field
    assert message in caught.value.details[0]["message"]
