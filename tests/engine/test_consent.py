from __future__ import annotations

from typing import Any

import pytest

from sluice.engine.consent import (
    consent_allows,
    normalize_category,
    parse_event_categories,
)

DISPLAY = frozenset({normalize_category("display ads")})
TWO = frozenset({"analytics", "email"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param("Display_Ads", "displayads", id="underscore-case"),
        pytest.param("display ads", "displayads", id="space"),
        pytest.param("Display-Ads", "displayads", id="dash"),
        pytest.param("big data", "bigdata", id="big-data"),
        pytest.param("CRM", "crm", id="upper"),
    ],
)
def test_normalize_category(raw: str, expected: str) -> None:
    assert normalize_category(raw) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param(None, None, id="absent"),
        pytest.param("analytics, Display_Ads", frozenset({"analytics", "displayads"}), id="csv"),
        pytest.param(
            ["Analytics", "display ads"], frozenset({"analytics", "displayads"}), id="list"
        ),
        pytest.param("", frozenset(), id="empty-text"),
        pytest.param([], frozenset(), id="empty-list"),
        pytest.param("email,,", frozenset({"email"}), id="stray-commas"),
        pytest.param(["email", 5, None], frozenset({"email", "5"}), id="list-not-only-text"),
        pytest.param(
            "analytics, " * 100 + "email", frozenset({"analytics", "email"}), id="long-uncached"
        ),
    ],
)
def test_parse_event_categories(value: Any, expected: frozenset[str] | None) -> None:
    assert parse_event_categories(value) == expected


@pytest.mark.parametrize(
    ("required", "event", "enforcement", "missing", "allowed"),
    [
        pytest.param(DISPLAY, {}, False, "deny", True, id="enforcement-off"),
        pytest.param(
            DISPLAY, {"consent_categories": []}, False, "allow", True, id="off-ignores-empty"
        ),
        pytest.param(
            frozenset(), {"consent_categories": []}, True, "deny", True, id="no-categories"
        ),
        pytest.param(DISPLAY, {}, True, "allow", True, id="absent-allow"),
        pytest.param(DISPLAY, {}, True, "deny", False, id="absent-deny"),
        pytest.param(DISPLAY, {"consent_categories": None}, True, "deny", False, id="null-deny"),
        pytest.param(
            DISPLAY, {"consent_categories": "Display_Ads"}, True, "deny", True, id="normalised"
        ),
        pytest.param(
            DISPLAY, {"consent_categories": ["display ads"]}, True, "deny", True, id="list-space"
        ),
        pytest.param(
            DISPLAY, {"consent_categories": "analytics"}, True, "allow", False, id="not-granted"
        ),
        pytest.param(DISPLAY, {"consent_categories": []}, True, "allow", False, id="empty-granted"),
        pytest.param(
            TWO, {"consent_categories": "analytics"}, True, "allow", False, id="needs-every-one"
        ),
        pytest.param(
            TWO, {"consent_categories": "email,analytics,crm"}, True, "deny", True, id="superset"
        ),
        pytest.param(
            DISPLAY,
            {"tealium_event": "grant_full_consent", "consent_categories": []},
            True,
            "deny",
            True,
            id="grant-full",
        ),
        pytest.param(
            DISPLAY,
            {"tealium_event": "grant_partial_consent"},
            True,
            "deny",
            True,
            id="grant-partial",
        ),
        pytest.param(
            DISPLAY,
            {"tealium_event": "decline_consent", "consent_categories": "analytics"},
            True,
            "deny",
            True,
            id="decline",
        ),
        pytest.param(
            DISPLAY,
            {"tealium_event": ["decline_consent"]},
            True,
            "deny",
            False,
            id="event-name-not-text",
        ),
    ],
)
def test_consent_allows(
    required: frozenset[str], event: dict[str, Any], enforcement: bool, missing: str, allowed: bool
) -> None:
    assert consent_allows(required, event, enforcement=enforcement, missing=missing) is allowed
