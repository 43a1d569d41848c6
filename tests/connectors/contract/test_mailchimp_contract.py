"""Contract: Sluice against a strict stand-in for Mailchimp's Marketing API, end to end.

The stand-in implements the list-member endpoints as documented: ``PUT`` (add or update) and
``PATCH`` (update) on ``/3.0/lists/{list_id}/members/{subscriber_hash}``, Basic auth with the
API key as password, the MD5 of the lowercased address as the member id, the JSON schema of
both bodies, an audience with a required FNAME merge field, and problem-details errors
(``application/problem+json``). Every request that departs from the docs is a deviation.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from sluice.connectors.catalog.mailchimp import CONNECTOR
from sluice.connectors.registry import Registry
from sluice.services import Services
from sluice.settings import Settings
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, send, totals, wait_until
from tests.support.vendor import Recorded, Reply, VendorMock

KEY = "0123456789abcdef0123456789abcdef-us6"
LIST_ID = "a1b2c3d4e5"
STATUSES = {"subscribed", "unsubscribed", "cleaned", "pending", "transactional"}
PUT_FIELDS = {
    "email_address",
    "status_if_new",
    "status",
    "email_type",
    "merge_fields",
    "interests",
    "language",
    "vip",
    "location",
    "marketing_permissions",
    "ip_signup",
    "timestamp_signup",
    "ip_opt",
    "timestamp_opt",
    "tags",
}
PATCH_FIELDS = PUT_FIELDS - {"status_if_new", "tags"}
MEMBER_PATH = re.compile(r"^/3\.0/lists/([^/]+)/members/([0-9a-f]{32})$")


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    """The real services, with Mailchimp in the catalog whether or not it is registered yet."""
    opened = Services.open(settings)
    if CONNECTOR.id not in opened.registry:
        opened.registry = Registry([*opened.registry.all(), CONNECTOR])
    yield opened
    opened.db.dispose()


def problem(status: int, title: str, detail: str, errors: list[Any] | None = None) -> Reply:
    doc: dict[str, Any] = {
        "type": "https://mailchimp.com/developer/marketing/docs/errors/",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": "995c5cb0-3280-4a6e-808b-3b096d0bb219",
    }
    if errors:
        doc["errors"] = errors
    headers = {"Content-Type": "application/problem+json; charset=utf-8"}
    return Reply(status, orjson.dumps(doc), headers)


class MailchimpApi:
    """Mailchimp's list-member endpoints, strictly; ``deviations`` lists what Sluice got wrong."""

    def __init__(self, vendor: VendorMock) -> None:
        self.deviations: list[str] = []
        self.members: dict[str, dict[str, Any]] = {}
        vendor.respond("/", self.answer)

    def add(self, email: str, status: str) -> None:
        digest = hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest()
        self.members[digest] = {"email_address": email, "status": status, "merge_fields": {}}

    def _auth_ok(self, r: Recorded) -> bool:
        auth = r.headers.get("authorization", "")
        if not auth.startswith("Basic "):
            self.deviations.append(f"{r.path}: Mailchimp needs HTTP Basic authentication")
            return False
        _, _, password = base64.b64decode(auth[6:]).decode().partition(":")
        return password == KEY

    def answer(self, r: Recorded) -> Reply:
        match = MEMBER_PATH.match(r.path)
        if match is None or r.method not in ("PUT", "PATCH"):
            self.deviations.append(f"{r.method} {r.path}: not a list-member endpoint")
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        if not self._auth_ok(r):
            return problem(401, "API Key Invalid", "Your API key may be invalid.")
        if r.headers.get("content-type", "").split(";")[0] != "application/json":
            self.deviations.append(f"{r.path}: Content-Type must be application/json")
        if set(r.query) - {"skip_merge_validation"}:
            self.deviations.append(f"{r.path}: unknown query parameters {sorted(r.query)}")
        list_id, digest = match.groups()
        if list_id != LIST_ID:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        body = r.json()
        allowed = PUT_FIELDS if r.method == "PUT" else PATCH_FIELDS
        if not isinstance(body, dict) or set(body) - allowed:
            self.deviations.append(f"{r.method} {r.path}: fields not in the schema: {body}")
            return problem(
                400, "Invalid Resource", "The resource submitted could not be validated."
            )
        for name in ("status", "status_if_new"):
            if name in body and body[name] not in STATUSES:
                self.deviations.append(f"{r.path}: {name} {body[name]!r} is not a status")
        if r.method == "PATCH":
            return self._patch(digest, body)
        return self._put(r, digest, body)

    def _patch(self, digest: str, body: dict[str, Any]) -> Reply:
        member = self.members.get(digest)
        if member is None:
            return problem(404, "Resource Not Found", "The requested resource could not be found.")
        member.update(body)
        return Reply(200, {"id": digest, **member})

    def _put(self, r: Recorded, digest: str, body: dict[str, Any]) -> Reply:
        email = body.get("email_address")
        if (
            not isinstance(email, str)
            or hashlib.md5(email.lower().encode(), usedforsecurity=False).hexdigest() != digest
        ):
            self.deviations.append(f"{r.path}: the path is not the MD5 of the lowercased email")
        merge_fields = body.get("merge_fields", {})
        if any(key != key.upper() for key in merge_fields):
            self.deviations.append(f"{r.path}: merge tags are upper case: {sorted(merge_fields)}")
        tags = body.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            self.deviations.append(f"{r.path}: tags must be a list of names")
        member = self.members.get(digest)
        if member is None:
            if "status_if_new" not in body:
                self.deviations.append(f"{r.path}: status_if_new is required for a new member")
            skip = r.query.get("skip_merge_validation") == "true"
            if not merge_fields.get("FNAME") and not skip:
                return problem(
                    400,
                    "Invalid Resource",
                    "Your merge fields were invalid.",
                    [{"field": "FNAME", "message": "Please enter a value"}],
                )
            member = {"email_address": email, "status": body.get("status_if_new")}
            self.members[digest] = member
        member.update({k: v for k, v in body.items() if k not in ("status_if_new", "tags")})
        return Reply(200, {"id": digest, **member})


ADA = hashlib.md5(b"ada@example.com", usedforsecurity=False).hexdigest()
SUBSCRIBE = {
    "name": "Newsletter signup",
    "type": "subscribe_or_update_member",
    "mappings": [
        {"parameter": "list_id", "value": LIST_ID},
        {"parameter": "email_address", "attribute": "customer_email"},
        {"parameter": "merge_fields", "key": "FNAME", "attribute": "first_name"},
        {"parameter": "merge_fields", "key": "lname", "attribute": "last_name"},
        {"parameter": "tags", "value": ["web-signup"]},
    ],
}
UNSUBSCRIBE = {
    "name": "Opt-out",
    "type": "unsubscribe",
    "mappings": [
        {"parameter": "list_id", "value": LIST_ID},
        {"parameter": "email_address", "attribute": "customer_email"},
    ],
}


def add_mailchimp(api: Api, profile: str, vendor: VendorMock, action: dict[str, Any]) -> Any:
    configuration = {"api_key": KEY, "base_url": vendor.url, **FAST_RETRIES}
    return add_connector(
        api,
        profile,
        type="mailchimp",
        name="Mailchimp",
        configuration=configuration,
        actions=[action],
    )


def errors(api: Api, profile: str) -> list[dict[str, Any]]:
    return list(api.get(f"{profile}/errors").json()["errors"])


def test_subscribe_puts_the_member(api: Api, profile: str, vendor: VendorMock) -> None:
    mailchimp = MailchimpApi(vendor)
    add_mailchimp(api, profile, vendor, SUBSCRIBE)
    send(api, {"customer_email": " Ada@Example.com", "first_name": "Ada", "last_name": "Lovelace"})
    [request] = vendor.wait_for(1, "/3.0/lists")
    assert request.method == "PUT"
    assert request.path == f"/3.0/lists/{LIST_ID}/members/{ADA}"
    assert request.json() == {
        "email_address": "Ada@Example.com",
        "status_if_new": "subscribed",
        "merge_fields": {"FNAME": "Ada", "LNAME": "Lovelace"},
        "tags": ["web-signup"],
    }
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert mailchimp.members[ADA]["status"] == "subscribed"
    assert mailchimp.deviations == []


def test_a_missing_merge_field_names_the_field(api: Api, profile: str, vendor: VendorMock) -> None:
    mailchimp = MailchimpApi(vendor)
    add_mailchimp(api, profile, vendor, SUBSCRIBE)
    event_id = send(api, {"customer_email": "ada@example.com"})["event_ids"][0]
    [record] = wait_until(lambda: errors(api, profile))
    assert record["event_id"] == event_id
    assert record["category"] == "http_4xx"
    assert record["status_code"] == 400
    assert "FNAME: Please enter a value" in record["message"]
    assert record["attempts"] == 1
    assert mailchimp.deviations == []


def test_unsubscribe_patches_the_status(api: Api, profile: str, vendor: VendorMock) -> None:
    mailchimp = MailchimpApi(vendor)
    mailchimp.add("ada@example.com", "subscribed")
    add_mailchimp(api, profile, vendor, UNSUBSCRIBE)
    send(api, {"customer_email": "ADA@example.com"})
    [request] = vendor.wait_for(1, "/3.0/lists")
    assert request.method == "PATCH"
    assert request.json() == {"status": "unsubscribed"}
    wait_until(lambda: totals(api, profile)["success"] == 1)
    assert mailchimp.members[ADA]["status"] == "unsubscribed"
    assert mailchimp.deviations == []


def test_unsubscribing_an_unknown_address_is_an_error(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    mailchimp = MailchimpApi(vendor)
    add_mailchimp(api, profile, vendor, UNSUBSCRIBE)
    send(api, {"customer_email": "nobody@example.com"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "http_4xx"
    assert record["status_code"] == 404
    assert "Resource Not Found" in record["message"]
    assert mailchimp.deviations == []


def test_an_invalid_key_is_an_auth_error(api: Api, profile: str, vendor: VendorMock) -> None:
    mailchimp = MailchimpApi(vendor)
    configuration = {"api_key": "ffffffffffffffff-us6", "base_url": vendor.url, **FAST_RETRIES}
    add_connector(
        api,
        profile,
        type="mailchimp",
        name="Mailchimp",
        configuration=configuration,
        actions=[SUBSCRIBE],
    )
    send(api, {"customer_email": "ada@example.com", "first_name": "Ada"})
    [record] = wait_until(lambda: errors(api, profile))
    assert record["category"] == "auth"
    assert record["status_code"] == 401
    assert "API Key Invalid" in record["message"]
    assert "ffffffffffffffff-us6" not in orjson.dumps(record).decode()
    assert mailchimp.deviations == []
