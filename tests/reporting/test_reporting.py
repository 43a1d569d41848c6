"""Reports, the error log, CSV exports, error groups, traces and the live stream."""

from __future__ import annotations

import csv
import io
import json
import time
import tracemalloc

from sluice.config import profiles
from sluice.storage.tables import error_records
from tests.conftest import Api
from tests.support.flows import FAST_RETRIES, add_connector, event_data_action, send, wait_until
from tests.support.vendor import Reply, VendorMock


def test_report_buckets_totals_and_filters(api: Api, profile: str, vendor: VendorMock) -> None:
    vendor.respond("/bad", Reply(status=422))
    good = add_connector(api, profile, name="Good", actions=[event_data_action(vendor.url + "/ok")])
    bad = add_connector(api, profile, name="Bad", actions=[event_data_action(vendor.url + "/bad")])
    for i in range(3):
        send(api, {"n": i})
    wait_until(lambda: api.get(f"{profile}/reports").json()["totals"]["error"] == 3)
    report = api.get(f"{profile}/reports", params={"bucket": "minute"}).json()
    assert report["bucket"] == "minute"
    assert report["from"].endswith("Z")
    assert len(report["buckets"]) in (1440, 1441)
    assert report["totals"]["triggered"] == 6
    assert report["totals"]["success"] == 3
    assert sum(b["success"] for b in report["buckets"]) == 3
    only_good = api.get(f"{profile}/reports", params={"connector": good["id"]}).json()
    assert only_good["totals"]["error"] == 0
    bad_action = bad["actions"][0]["id"]
    only_bad = api.get(f"{profile}/reports", params={"action": bad_action}).json()
    assert only_bad["totals"] == {
        "triggered": 3,
        "success": 0,
        "error": 3,
        "retried": 0,
        "filtered_consent": 0,
        "dropped": 0,
    }
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    assert api.get(f"{profile}/reports", params={"from": later}).status_code == 400
    assert api.get(f"{profile}/reports", params={"bucket": "week"}).status_code == 422
    metrics = api.get(f"{profile}/reports.csv").text.splitlines()
    assert metrics[0] == (
        "start,connector_id,connector_name,action_id,action_name,"
        "triggered,success,error,retried,filtered_consent,dropped"
    )
    rows = list(csv.DictReader(io.StringIO("\n".join(metrics))))
    assert {r["connector_name"] for r in rows} == {"Good", "Bad"}
    assert sum(int(r["triggered"]) for r in rows) == 6


def test_connector_list_shows_counts(api: Api, profile: str, vendor: VendorMock) -> None:
    add_connector(api, profile, actions=[event_data_action(vendor.url + "/ok")])
    send(api, {"n": 1})
    vendor.wait_for(1, "/ok")

    def counts() -> dict[str, int]:
        [connector] = api.get(f"{profile}/connectors").json()["connectors"]
        return dict(connector["counts"])

    assert wait_until(lambda: counts()["success"] == 1)


def test_error_log_pages_groups_and_csv(api: Api, profile: str, vendor: VendorMock) -> None:
    vendor.respond("/bad", Reply(status=400, body={"error": "missing email"}))
    connector = add_connector(
        api, profile, configuration=FAST_RETRIES, actions=[event_data_action(vendor.url + "/bad")]
    )
    for i in range(5):
        send(api, {"n": i})
    wait_until(lambda: len(api.get(f"{profile}/errors").json()["errors"]) == 5)
    first = api.get(f"{profile}/errors", params={"limit": 2}).json()
    assert len(first["errors"]) == 2
    assert first["next_cursor"]
    second = api.get(f"{profile}/errors", params={"limit": 2, "cursor": first["next_cursor"]})
    seen = [e["id"] for e in first["errors"]] + [e["id"] for e in second.json()["errors"]]
    assert len(set(seen)) == 4
    last = api.get(f"{profile}/errors", params={"limit": 5}).json()
    assert last["next_cursor"] is None
    record = last["errors"][0]
    assert set(record) == {
        "id", "timestamp", "account", "profile", "connector_id", "connector_name", "action_id",
        "action_name", "event_id", "attempts", "category", "status_code", "message", "request",
        "response", "replayed_at",
    }  # fmt: skip
    assert api.get(f"{profile}/errors", params={"limit": 1001}).status_code == 422
    groups = api.get(f"{profile}/errors/groups").json()["groups"]
    assert len(groups) == 1
    assert groups[0]["count"] == 5
    assert groups[0]["category"] == "http_4xx"
    assert "missing email" in groups[0]["message"]
    assert groups[0]["sample"]["connector_id"] == connector["id"]
    text = api.get(f"{profile}/errors.csv", params={"connector": connector["id"]}).text
    rows = list(csv.DictReader(io.StringIO(text)))
    assert len(rows) == 5
    assert list(rows[0]) == [
        "timestamp", "account", "profile", "connector_id", "connector_name", "action_id",
        "action_name", "event_id", "attempts", "category", "status_code", "message", "request",
        "response",
    ]  # fmt: skip
    assert json.loads(rows[0]["request"])["method"] == "POST"
    assert json.loads(rows[0]["response"])["status"] == 400
    assert rows[0]["account"] == "acme"
    none = api.get(f"{profile}/errors.csv", params={"connector": "con_other"}).text
    assert none.count("\n") == 1


def test_errors_csv_streams_100k_rows_in_constant_memory(api: Api, profile: str) -> None:
    services = api.client.app.state.services  # type: ignore[attr-defined]
    profile_id = profiles.get(services.db, "acme", "main").id
    now = time.time()
    request = json.dumps(
        {"method": "POST", "url": "https://vendor.test/x", "headers": {}, "body": {"a": 1}}
    )
    rows = [
        {
            "id": f"err_{i:08d}",
            "profile_id": profile_id,
            "timestamp": now - i,
            "connector_id": "con_x",
            "connector_name": "X",
            "action_id": "act_x",
            "action_name": "A",
            "event_id": f"evt-{i}",
            "attempts": 1,
            "category": "http_4xx",
            "status_code": 400,
            "message": 'HTTP 400: bad, "quoted" value',
            "request": request,
            "response": '{"status": 400, "headers": {}, "body": "no"}',
        }
        for i in range(100_000)
    ]
    with services.db.begin() as conn:
        for start in range(0, len(rows), 10_000):
            conn.execute(error_records.insert(), rows[start : start + 10_000])
    del rows
    tracemalloc.start()
    count = 0
    size = 0
    with api.client.stream("GET", f"/api/v1{profile}/errors.csv", headers=api.headers) as response:
        assert response.status_code == 200
        for chunk in response.iter_bytes():
            size += len(chunk)
            count += chunk.count(b"\r\n")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 100_001
    assert size > 25_000_000
    assert peak < size / 4, (peak, size)


def test_trace_records_each_step(api: Api, profile: str, vendor: VendorMock) -> None:
    add_connector(api, profile, actions=[event_data_action(vendor.url + "/t")])
    send(api, {"tealium_trace_id": "trace-42", "tealium_event": "purchase"})
    vendor.wait_for(1, "/t")
    trace = wait_until(
        lambda: (
            (r := api.get(f"{profile}/traces/trace-42")).status_code == 200
            and len(r.json()["steps"]) >= 2
            and r.json()
        )
    )
    steps = [s["step"] for s in trace["steps"]]
    assert steps == ["routed", "delivery"]
    routed = trace["steps"][0]["data"]
    assert routed["event"]["tealium_event"] == "purchase"
    assert len(routed["triggered"]) == 1
    delivery = trace["steps"][1]["data"]
    assert delivery["request"]["method"] == "POST"
    assert delivery["response"]["status"] == 200
    assert delivery["outcome"] == "success"
    assert api.get(f"{profile}/traces/unknown").status_code == 404


def test_live_stream_sends_counts(api: Api, profile: str, vendor: VendorMock) -> None:
    add_connector(api, profile, actions=[event_data_action(vendor.url + "/live")])
    send(api, {"n": 1})
    vendor.wait_for(1, "/live")
    got: list[dict[str, object]] = []
    with api.client.stream(
        "GET", f"/api/v1{profile}/reports/live", headers=api.headers, timeout=10
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event == "counts":
                got.append(json.loads(line[5:]))
                if any(g.get("success") == 1 for g in got):
                    break
    assert got[-1]["success"] == 1
    assert got[-1]["triggered"] == 1
    assert str(got[-1]["minute"]).endswith("Z")
