"""Test an action: the rendered request with secrets masked, and optionally the response."""

from __future__ import annotations

from tests.conftest import Api
from tests.support.flows import add_connector
from tests.support.vendor import Reply, VendorMock


def test_action_test_renders_the_draft_and_masks_secrets(
    api: Api, profile: str, vendor: VendorMock
) -> None:
    connector = add_connector(
        api,
        profile,
        configuration={"auth_type": "bearer", "token": "tok-very-secret"},
        actions=[
            {
                "name": "Custom",
                "type": "send_custom_request",
                "mappings": [
                    {"parameter": "method", "value": "POST"},
                    {"parameter": "url", "value": vendor.url + "/custom"},
                    {"parameter": "url_params", "key": "sig", "value": "tok-very-secret"},
                    {"parameter": "body", "template": '{"order": "{{ order_id }}"}'},
                ],
            }
        ],
        publish=False,
    )
    action_id = connector["actions"][0]["id"]
    url = f"{profile}/connectors/{connector['id']}/actions/{action_id}/test"
    dry = api.post(url, {"event": {"order_id": "A7"}, "send": False}).json()
    assert dry["responses"] is None
    assert dry["error"] is None
    [request] = dry["requests"]
    assert request["method"] == "POST"
    assert request["body"] == {"order": "A7"}
    assert request["headers"]["Authorization"] == "Bearer ********"
    assert "tok-very-secret" not in str(dry)
    assert vendor.received() == []
    vendor.respond("/custom", Reply(status=201, body={"id": 5}))
    sent = api.post(url, {"event": {"order_id": "A8"}, "send": True}).json()
    [response] = sent["responses"]
    assert response["status"] == 201
    assert sent["error"] is None
    [received] = vendor.received("/custom")
    assert received.json() == {"order": "A8"}
    assert received.headers["authorization"] == "Bearer tok-very-secret"


def test_action_test_reports_mapping_errors(api: Api, profile: str, vendor: VendorMock) -> None:
    connector = add_connector(
        api,
        profile,
        actions=[
            {
                "name": "Custom",
                "type": "send_custom_request",
                "mappings": [
                    {"parameter": "method", "value": "POST"},
                    {"parameter": "url", "attribute": "target_url"},
                ],
            }
        ],
        publish=False,
    )
    action_id = connector["actions"][0]["id"]
    url = f"{profile}/connectors/{connector['id']}/actions/{action_id}/test"
    result = api.post(url, {"event": {"order_id": "A7"}}).json()
    assert result["error"]["category"] == "mapping"
    assert "url" in result["error"]["message"]
    assert result["requests"] == []
