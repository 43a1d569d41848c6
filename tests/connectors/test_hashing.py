"""What the conversion APIs share: normalising and hashing contact details, user data."""

from __future__ import annotations

import hashlib

import pytest

from sluice.connectors.catalog import (
    meta_conversions_api,
    pinterest_conversions_api,
    tiktok_events_api,
)
from sluice.connectors.hashing import USER_DATA, Kind, hashed, normalise, user_data
from sluice.errors import MappingError


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("kind", "value", "normalised"),
    [
        ("email", " Ada.Lovelace@Example.COM ", "ada.lovelace@example.com"),
        ("phone", "+44 (20) 7946-0958", "442079460958"),
        ("phone", "0044 20 7946 0958", "442079460958"),
        ("phone_e164", "+1 555.555.0100", "+15555550100"),
        ("name", " Zoë-Anne ", "zoëanne"),
        ("city", "Saint-Étienne 42", "saintétienne"),
        ("state", "N.Y.", "ny"),
        ("zip", "94105-1234", "94105"),
        ("zip", "SW1A 1AA", "sw1a1aa"),
        ("country", " DE ", "de"),
        ("gender", "Female", "f"),
        ("dob", "1990-01-31", "19900131"),
        ("id", " Cust-42 ", "Cust-42"),
    ],
    ids=[
        "email",
        "phone-plus",
        "phone-00",
        "phone-e164",
        "name-unicode",
        "city",
        "state",
        "zip-us",
        "zip-uk",
        "country",
        "gender",
        "dob",
        "id-keeps-case",
    ],
)
def test_normalisation_follows_the_vendors(kind: Kind, value: str, normalised: str) -> None:
    assert normalise(kind, value, "p") == normalised
    assert hashed(kind, value, "p") == sha(normalised)


@pytest.mark.parametrize(
    ("kind", "value"),
    [("email", "ada.example.com"), ("email", "ada @x.com"), ("phone", "12-34"), ("gender", "x")],
    ids=["email-no-at", "email-space", "phone-too-short", "gender-unknown"],
)
def test_values_that_cannot_be_normalised_are_mapping_errors(kind: Kind, value: str) -> None:
    with pytest.raises(MappingError):
        normalise(kind, value, "p")


def test_meta_and_pinterest_share_one_table_and_differ_where_documented() -> None:
    assert meta_conversions_api.HASHED == USER_DATA
    pinterest = pinterest_conversions_api.HASHED
    assert {k: v for k, v in pinterest.items() if k != "mobile_ad_id"} == USER_DATA
    assert pinterest["mobile_ad_id"] == ("hashed_maids", "id")
    # TikTok keeps its own keys and hashes phone numbers with their +.
    assert tiktok_events_api.HASHED["phone"] == ("phone", "phone_e164")


def test_user_data_sends_lists_of_hashes_or_one_hash_each() -> None:
    params = {"email": [" A@B.co", "a@b.co", "c@d.co"], "phone": "", "ip": " 1.2.3.4 "}
    table: dict[str, tuple[str, Kind]] = {"email": ("em", "email"), "phone": ("ph", "phone")}
    assert user_data(params, table, ("ip",)) == {
        "em": [sha("a@b.co"), sha("c@d.co")],
        "ip": "1.2.3.4",
    }
    one = user_data({"email": " A@B.co", "ip": None}, table, ("ip",), one_each=True)
    assert one == {"em": sha("a@b.co")}
    with pytest.raises(MappingError):
        user_data({"email": ["a@b.co"]}, table, (), one_each=True)
