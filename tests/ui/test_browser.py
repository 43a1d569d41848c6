"""The web interface in a real browser: Chromium (Playwright) against a real `sluice serve`.

One server, vendor mock and browser per module; each test sets up what it needs through the
API (except the workflow test, which does everything through the pages). Every screen is
saved under build/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.support.flows import wait_until
from tests.support.vendor import Reply, VendorMock

pytestmark = pytest.mark.browser

playwright_api = pytest.importorskip("playwright.sync_api")
Browser = playwright_api.Browser
Page = playwright_api.Page
expect = playwright_api.expect

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]
SHOTS = Path(__file__).resolve().parents[2] / "build" / "screenshots"
ADMIN = ("admin@acme.test", "admin-password-1")
VIEWER = ("viewer@acme.test", "viewer-password-1")
P = "/p/acme/main"
# The runtime polls for published configuration every second; wait a little longer.
RELOAD_SECONDS = 2.0
API = "/api/v1/profiles/acme/main"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Server:
    url: str
    token: str
    vendor: VendorMock

    def call(self, method: str, path: str, body: Any = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()!r}") from exc
        return json.loads(raw) if raw else None

    def send(self, count: int = 1, **event: Any) -> None:
        """Events through the collect API, as a client would send them."""
        events = [
            {"tealium_event": "purchase", "order_id": f"A-{i}", "order_total": 10 + i, **event}
            for i in range(count)
        ]
        body = {"shared": {"tealium_account": "acme", "tealium_profile": "main"}, "events": events}
        request = urllib.request.Request(
            self.url + "/bulk-event",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def connector(
        self, name: str, path: str, *, publish: bool = True, action: str = "Send events"
    ) -> dict[str, Any]:
        """A webhook connector with one Send Event Data action to the vendor mock."""
        made = self.call(
            "POST",
            f"{API}/connectors",
            {
                "type": "webhook",
                "name": name,
                "enabled": True,
                "configuration": {"first_retry_seconds": 0.2, "max_attempts": 2},
            },
        )
        self.call(
            "POST",
            f"{API}/connectors/{made['id']}/actions",
            {
                "name": action,
                "type": "send_event_data",
                "enabled": True,
                "mappings": [{"parameter": "url", "value": self.vendor.url + path}],
            },
        )
        if publish:
            self.publish(made["id"])
        return dict(self.call("GET", f"{API}/connectors/{made['id']}"))

    def publish(self, connector_id: str, note: str = "set up by the test") -> None:
        self.call("POST", f"{API}/connectors/{connector_id}/publish", {"note": note})
        time.sleep(RELOAD_SECONDS)

    def totals(self, connector_id: str) -> dict[str, int]:
        report = self.call("GET", f"{API}/reports?connector={connector_id}")
        return dict(report["totals"])


def _cli(database: str, env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "sluice", *args[:2], "--database", database, *args[2:]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    folder = tmp_path_factory.mktemp("sluice-ui")
    database = f"sqlite:///{folder}/s.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLUICE_")}
    env.update(
        SLUICE_SECRET_KEY="browser-test-key",
        SLUICE_ALLOW_PRIVATE_DESTINATIONS="1",
        PYTHONUNBUFFERED="1",
    )
    _cli(database, env, "migrate")
    for (email, password), role in ((ADMIN, "admin"), (VIEWER, "viewer")):
        _cli(
            database,
            env,
            "users",
            "create",
            "--email",
            email,
            "--role",
            role,
            "--password",
            password,
        )
    token = (
        _cli(database, env, "tokens", "create", "--name", "browser-tests", "--role", "admin")
        .strip()
        .splitlines()[-1]
    )
    port = _free_port()
    log = (folder / "serve.log").open("wb")
    process = subprocess.Popen(
        [sys.executable, "-m", "sluice", "serve", "--port", str(port), "--database", database],
        cwd=folder,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, (folder / "serve.log").read_text()
        try:
            with urllib.request.urlopen(url + "/readyz", timeout=1) as response:
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    vendor = VendorMock().start()
    try:
        wait_until(ready, timeout=30, interval=0.1)
        found = Server(url, token, vendor)
        found.call("POST", "/api/v1/profiles", {"account": "acme", "profile": "main"})
        yield found
    finally:
        vendor.stop()
        process.terminate()
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)
        log.close()


@pytest.fixture(scope="module")
def browser(server: Server) -> Iterator[Browser]:
    if SHOTS.exists():
        shutil.rmtree(SHOTS)
    SHOTS.mkdir(parents=True)
    with playwright_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True
        )
        yield launched
        launched.close()


def _log_in(page: Page, server: Server, who: tuple[str, str]) -> None:
    page.goto(server.url + "/login")
    page.get_by_label("Email").fill(who[0])
    page.get_by_label("Password").fill(who[1])
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("heading", name="Connectors", exact=True)).to_be_visible()


@pytest.fixture(scope="module")
def admin_state(browser: Browser, server: Server, tmp_path_factory: pytest.TempPathFactory) -> str:
    context = browser.new_context()
    page = context.new_page()
    _log_in(page, server, ADMIN)
    path = str(tmp_path_factory.mktemp("state") / "admin.json")
    context.storage_state(path=path)
    context.close()
    return path


@pytest.fixture
def page(browser: Browser, admin_state: str) -> Iterator[Page]:
    context = browser.new_context(
        storage_state=admin_state, viewport={"width": 1366, "height": 900}
    )
    context.set_default_timeout(10_000)
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))
    yield opened
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


def shot(page: Page, name: str) -> None:
    # Scrolled to the top, so sticky bars are drawn where they belong on a full-page image.
    page.evaluate("window.scrollTo(0, 0)")
    page.wait_for_timeout(150)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


# --- the scenarios -------------------------------------------------------------------------


def test_log_in(browser: Browser, server: Server) -> None:
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.goto(server.url + "/")
    expect(page).to_have_url(server.url + "/login")
    shot(page, "01-login")
    page.get_by_label("Email").fill(ADMIN[0])
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("do not match")
    page.get_by_label("Password").fill(ADMIN[1])
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(server.url + P + "/")
    expect(page.get_by_text("No connectors yet")).to_be_visible()
    shot(page, "02-landing-empty")
    page.get_by_label("Account menu").click()
    page.get_by_role("button", name="Log out").click()
    expect(page.get_by_text("You are logged out.")).to_be_visible()
    context.close()


def test_add_a_webhook_connector_through_the_workflow(page: Page, server: Server) -> None:
    page.goto(server.url + P + "/")
    page.get_by_role("link", name="Add connector").first.click()
    expect(page.get_by_role("heading", name="Add a connector")).to_be_visible()
    shot(page, "03-workflow-choose-type")
    page.locator(".type-card", has_text="Send event and visitor data").click()
    expect(page.get_by_role("heading", name="Add Webhook")).to_be_visible()
    page.get_by_label("Connector name").fill("Orders webhook")
    page.locator("#cfg-auth_type").select_option("bearer")
    page.get_by_label("Bearer token").fill("sk-live-very-secret")
    shot(page, "04-workflow-configure")
    page.get_by_role("button", name="Save and add actions").click()

    expect(page.get_by_role("heading", name="Add an action to Orders webhook")).to_be_visible()
    expect(page.get_by_text("created. Now add what it should do")).to_be_visible()
    page.get_by_text("Send Customized Data", exact=True).click()
    expect(page.get_by_label("Action name")).to_have_value("Send Customized Data")
    page.get_by_label("Action name").fill("Order to fulfilment")
    overall = page.locator("#overall-status")
    expect(overall).to_have_text("INCOMPLETE")
    expect(page.get_by_label("Switch the action on")).to_be_disabled()
    page.get_by_label("HTTP method: value").select_option("POST")
    expect(page.locator('[data-group-status="Request"]')).to_have_text("INCOMPLETE")
    page.get_by_label("URL: value").fill(server.vendor.url + "/fulfilment")
    expect(overall).to_have_text("COMPLETED")
    expect(page.locator('[data-group-status="Request"]')).to_have_text("COMPLETED")
    page.get_by_role("button", name="+ Add header").click()
    page.get_by_label("Headers: name of the entry").fill("X-Source")
    page.get_by_label("Headers: take the value from").select_option("value")
    page.get_by_label("Headers: value").fill("sluice")
    body = page.get_by_label("Body: template")
    body.fill('{"order": "{{ order_id }}", "total": {{ order_total }}}')
    expect(page.locator('[data-param="body"] .preview')).to_contain_text('{"order": "')
    page.get_by_label("Switch the action on").check()
    shot(page, "05-workflow-action-mappings")
    page.get_by_role("button", name="Save action").click()

    expect(page.get_by_text("Unpublished changes").first).to_be_visible()
    expect(page.get_by_role("link", name="Order to fulfilment")).to_be_visible()
    page.get_by_label("Note for this version").fill("First version: orders to fulfilment")
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Version 1 published.")).to_be_visible()
    expect(page.locator("#publish")).to_contain_text("Up to date")
    assert "sk-live-very-secret" not in page.content()
    expect(page.locator("#configuration")).to_contain_text("set")

    # The Test action panel: render, then send for real.
    page.get_by_role("button", name="Render request").click()
    expect(page.locator("#test-output")).to_contain_text("POST " + server.vendor.url)
    expect(page.locator("#test-output")).to_contain_text("Bearer ********")
    page.get_by_role("button", name="Send to vendor").click()
    expect(page.locator("[data-test-status]")).to_have_text("HTTP 200")
    shot(page, "06-connector-page")
    sent = server.vendor.wait_for(1, "/fulfilment")[-1]
    assert sent.headers["x-source"] == "sluice"
    assert sent.headers["authorization"] == "Bearer sk-live-very-secret"

    connectors = server.call("GET", f"{API}/connectors")["connectors"]
    made = next(c for c in connectors if c["name"] == "Orders webhook")
    assert made["published_version"] == 1
    assert made["enabled"] is True
    action = made["actions"][0]
    assert action["enabled"] is True
    assert action["status"]["state"] == "COMPLETED"
    assert {"parameter": "headers", "key": "X-Source", "value": "sluice"} in action["mappings"]


def test_counts_rise_on_the_page_without_a_reload(page: Page, server: Server) -> None:
    made = server.connector("Live counts", "/live")
    page.goto(server.url + P + "/")
    expect(page.locator("body[data-live=open]")).to_have_count(1)
    page.evaluate("window.__notReloaded = true")
    count = page.locator(f"#connector-{made['id']} .cc-side .count.success b")
    expect(count).to_have_text("0")
    started = time.monotonic()
    server.send(7)
    expect(count).to_have_text("7", timeout=10_000)
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator('.stat.success .value[data-counter="success"]')).not_to_have_text("0")
    page.wait_for_timeout(1000)  # let the highlight of the changed counts fade
    shot(page, "07-landing-live-counts")
    assert time.monotonic() - started < 10


def test_errors_are_grouped_and_downloaded_as_csv(page: Page, server: Server) -> None:
    server.vendor.respond("/refuse", Reply(400, body={"error": "email is required"}))
    made = server.connector("Failing CRM", "/refuse", action="Upsert contact")
    server.send(3, email=None)
    wait_until(lambda: server.totals(made["id"])["error"] == 3, timeout=15)
    page.goto(server.url + f"{P}/connectors/{made['id']}/reports")
    expect(page.locator('.stat .value[data-counter="error"]')).to_have_text("3")
    groups = page.locator("#errors table")
    expect(groups).to_contain_text("http_4xx")
    expect(groups).to_contain_text("HTTP 400")
    page.get_by_text("Request and response").first.click()
    expect(groups).to_contain_text("email is required")
    shot(page, "08-reports-connector")

    with page.expect_download() as download_info:
        page.get_by_role("link", name="Download errors (CSV)").click()
    download = download_info.value
    rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text())))
    assert len(rows) == 3
    assert {r["connector_name"] for r in rows} == {"Failing CRM"}
    assert {r["action_name"] for r in rows} == {"Upsert contact"}
    assert {r["category"] for r in rows} == {"http_4xx"}
    assert {r["status_code"] for r in rows} == {"400"}
    assert json.loads(rows[0]["request"])["method"] == "POST"

    with page.expect_download() as metrics_info:
        page.get_by_role("link", name="Export metrics (CSV)").click()
    metrics = Path(metrics_info.value.path()).read_text().splitlines()
    assert metrics[0].startswith("start,connector_id,connector_name,action_id")
    assert any(",Failing CRM," in line for line in metrics[1:])

    page.get_by_role("button", name="Replay errors").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Replay errors").click()
    expect(page.get_by_text("Replayed 3 error record(s).")).to_be_visible()
    wait_until(lambda: server.totals(made["id"])["error"] == 6, timeout=15)

    page.goto(server.url + f"{P}/reports?range=1h")
    expect(page.get_by_role("heading", name="All connectors")).to_be_visible()
    shot(page, "09-reports-profile")


def test_configure_move_copy_duplicate_and_delete(page: Page, server: Server) -> None:
    dev = server.connector("CRM (dev)", "/crm-dev", action="Upsert lead")
    prod = server.connector("CRM (prod)", "/crm-prod", action="Upsert customer")
    page.goto(server.url + f"{P}/connectors/{dev['id']}")

    page.get_by_text("Edit configuration").click()
    page.locator("#cfg-auth_type").select_option("basic")
    page.get_by_label("Username").fill("crm-user")
    page.get_by_label("Password").fill("crm-password")
    page.locator("#cfg-name").fill("x" * 201)
    page.get_by_role("button", name="Save configuration").click()
    expect(page.locator('[data-error-for="name"]')).to_have_text("must be at most 200 characters")
    page.locator("#cfg-name").fill("CRM (dev)")
    page.get_by_text("Delivery settings").click()
    page.get_by_label("Maximum attempts").fill("3")
    page.get_by_role("button", name="Save configuration").click()
    expect(page.get_by_text("Configuration saved to the draft.")).to_be_visible()
    expect(page.locator("#configuration")).to_contain_text("crm-user")
    assert "crm-password" not in page.content()
    expect(page.locator("#publish")).to_contain_text("Unpublished changes")

    page.get_by_label("More for Upsert lead").click()
    page.get_by_role("button", name="Move to another connector…").click()
    dialog = page.get_by_role("dialog", name="Move “Upsert lead”")
    dialog.get_by_label("Connector").select_option(label="CRM (prod)")
    dialog.get_by_role("button", name="Move action").click()
    expect(page).to_have_url(server.url + f"{P}/connectors/{prod['id']}")
    expect(page.get_by_text("Upsert lead moved with its mappings")).to_be_visible()
    expect(page.get_by_role("link", name="Upsert lead")).to_be_visible()

    page.get_by_label("More for Upsert customer").click()
    page.get_by_role("button", name="Copy mappings to…").click()
    dialog = page.get_by_role("dialog", name="Copy the mappings of “Upsert customer”")
    dialog.get_by_label("To the action").select_option(label="CRM (prod) › Upsert lead")
    dialog.get_by_label("Overwrite it with this action's").check()
    dialog.get_by_role("button", name="Copy mappings").click()
    expect(page.get_by_text("Mappings copied to Upsert lead.")).to_be_visible()
    moved = server.call("GET", f"{API}/connectors/{prod['id']}")["actions"]
    assert [a["mappings"][0]["value"] for a in moved] == [server.vendor.url + "/crm-prod"] * 2

    page.get_by_label("More connector actions").click()
    page.get_by_role("button", name="Duplicate…").click()
    dialog = page.get_by_role("dialog", name="Duplicate “CRM (prod)”")
    dialog.get_by_label("Name of the copy").fill("CRM (sandbox)")
    dialog.get_by_role("button", name="Duplicate").click()
    expect(page.get_by_role("heading", name="CRM (sandbox)")).to_be_visible()
    expect(page.get_by_text("switched off and without secrets")).to_be_visible()

    page.goto(server.url + f"{P}/connectors/{dev['id']}")
    page.get_by_label("More connector actions").click()
    page.get_by_role("button", name="Delete connector…").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_contain_text("Delete the connector “CRM (dev)”")
    dialog.get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("heading", name="CRM (dev)")).to_be_visible()
    page.get_by_label("More connector actions").click()
    page.get_by_role("button", name="Delete connector…").click()
    dialog.get_by_role("button", name="Delete connector").click()
    expect(page.get_by_text("CRM (dev) deleted.")).to_be_visible()
    expect(page).to_have_url(server.url + P + "/")
    expect(page.get_by_role("link", name="CRM (dev)")).to_have_count(0)


def test_spotlight_finds_a_connector_by_three_letters(page: Page, server: Server) -> None:
    made = server.connector("Zephyr alerts", "/zephyr", publish=False)
    page.goto(server.url + P + "/")
    page.keyboard.press("/")
    spotlight = page.locator("#spotlight-input")
    expect(spotlight).to_be_focused()
    spotlight.press_sequentially("zep", delay=40)
    first = page.locator("#spotlight-results [role=option]").first
    expect(first).to_contain_text("Zephyr alerts")
    expect(first).to_have_attribute("aria-selected", "true")
    shot(page, "10-spotlight")
    spotlight.press("Enter")
    expect(page).to_have_url(server.url + f"{P}/connectors/{made['id']}")

    page.keyboard.press("Control+k")
    expect(spotlight).to_be_focused()
    spotlight.fill("")
    spotlight.press_sequentially("zep", delay=40)
    expect(page.locator("#spotlight-results [role=option]").first).to_contain_text("Zephyr")
    for _ in range(3):  # the result, then its options: Add action, Configuration, Reporting
        spotlight.press("ArrowDown")
    expect(page.locator('#spotlight-results [aria-selected="true"]')).to_have_text("Reporting")
    spotlight.press("Enter")
    expect(page).to_have_url(server.url + f"{P}/connectors/{made['id']}/reports")


def test_switching_an_action_off_stops_its_deliveries(page: Page, server: Server) -> None:
    made = server.connector("Toggle me", "/toggle", action="Deliver orders")
    server.send(1)
    server.vendor.wait_for(1, "/toggle")
    page.goto(server.url + f"{P}/connectors/{made['id']}")
    switch = page.get_by_role("switch", name="Action Deliver orders")
    expect(switch).to_have_attribute("aria-checked", "true")
    switch.click()
    expect(page.get_by_text("Deliver orders switched off; publish to apply.")).to_be_visible()
    expect(page.get_by_role("switch", name="Action Deliver orders")).to_have_attribute(
        "aria-checked", "false"
    )
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Version 2 published.")).to_be_visible()
    time.sleep(RELOAD_SECONDS)
    server.send(3)
    time.sleep(3)
    assert len(server.vendor.received("/toggle")) == 1
    assert server.totals(made["id"])["triggered"] == 1

    # Bulk: select the action, switch it on again, publish: deliveries resume.
    page.get_by_label("Select Deliver orders").check()
    page.get_by_role("button", name="Switch on selected").click()
    expect(page.get_by_text("1 action(s) switched on")).to_be_visible()
    page.get_by_role("button", name="Publish").click()
    expect(page.get_by_text("Version 3 published.")).to_be_visible()
    time.sleep(RELOAD_SECONDS)
    server.send(2)
    server.vendor.wait_for(3, "/toggle")


def test_compare_versions_and_roll_back(page: Page, server: Server) -> None:
    made = server.connector("Versioned hook", "/versioned", action="Send all")
    action = made["actions"][0]
    server.call(
        "PATCH",
        f"{API}/connectors/{made['id']}/actions/{action['id']}",
        {"enabled": False, "name": "Send all (paused)"},
    )
    server.publish(made["id"], note="Pause while the vendor migrates")
    page.goto(server.url + f"{P}/connectors/{made['id']}/versions")
    expect(page.get_by_role("row", name="v2")).to_contain_text("Pause while the vendor migrates")
    shot(page, "11-versions")
    page.get_by_role("button", name="Compare selected").click()
    expect(page.get_by_role("heading", name="Version 1 ↔ version 2")).to_be_visible()
    table = page.locator(".diff-table")
    expect(table).to_contain_text("Send all (paused)")
    expect(table).to_contain_text("enabled")
    shot(page, "12-versions-diff")

    page.get_by_role("link", name="History").click()
    page.get_by_role("button", name="Roll back to v1").click()
    dialog = page.locator("#confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Roll back “Versioned hook” to version 1?")
    dialog.get_by_role("button", name="Roll back").click()
    expect(page.get_by_text("Rolled back to version 1: published as version 3.")).to_be_visible()
    expect(page.get_by_role("row", name="v3")).to_contain_text("Rollback to v1")
    after = server.call("GET", f"{API}/connectors/{made['id']}")
    assert after["published_version"] == 3
    assert after["actions"][0]["enabled"] is True
    assert after["actions"][0]["name"] == "Send all"


def test_a_viewer_cannot_edit(browser: Browser, server: Server) -> None:
    made = server.connector("Read only hook", "/readonly")
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    _log_in(page, server, VIEWER)
    expect(page.get_by_role("link", name="Add connector")).to_have_count(0)
    expect(page.get_by_role("button", name="Switch on")).to_have_count(0)
    shot(page, "13-viewer-landing")
    page.goto(server.url + f"{P}/connectors/{made['id']}")
    expect(page.get_by_role("heading", name="Read only hook")).to_be_visible()
    for name in ("Publish", "Render request", "Add action"):
        expect(page.get_by_role("button", name=name)).to_have_count(0)
    expect(page.get_by_role("link", name="Add action")).to_have_count(0)
    expect(page.get_by_label("More connector actions")).to_have_count(0)
    expect(page.get_by_role("switch")).to_have_count(0)
    # The server refuses a forged form post and an API write from the viewer's session.
    status = page.evaluate(
        """async (url) => {
          const csrf = document.querySelector('meta[name=csrf-token]').content;
          const form = new URLSearchParams({csrf, enabled: 'false'});
          const post = await fetch(url + '/toggle', {method: 'POST', body: form});
          const api = await fetch(url.replace('/p/', '/api/v1/profiles/'), {
            method: 'PATCH', body: JSON.stringify({enabled: false}),
            headers: {'X-CSRF-Token': csrf, 'Content-Type': 'application/json'}});
          return [post.status, api.status];
        }""",
        f"{P}/connectors/{made['id']}",
    )
    assert status == [403, 403]
    assert server.call("GET", f"{API}/connectors/{made['id']}")["enabled"] is True
    context.close()


def test_every_other_screen(page: Page, server: Server) -> None:
    """Event feeds (the condition builder), data sources, attributes, settings, the trace
    viewer, the audit log, the catalog and the error page, each saved as a screenshot."""
    made = server.connector("Traced hook", "/traced", action="Traced action")
    page.goto(server.url + f"{P}/event-feeds")
    page.get_by_role("link", name="New event feed").click()
    page.get_by_label("Name").fill("Big purchases")
    page.get_by_label("Value").first.fill("purchase")
    page.get_by_role("button", name="+ AND condition").click()
    page.get_by_label("Attribute").nth(1).fill("order_total")
    page.get_by_label("Operator").nth(1).select_option("gte")
    page.get_by_label("Value").nth(1).fill("abc")
    page.get_by_role("button", name="+ Add an OR group").click()
    page.get_by_label("Attribute").nth(2).fill("tealium_event")
    page.get_by_label("Operator").nth(2).select_option("in")
    page.get_by_label("Value").nth(2).fill("refund, chargeback")
    page.get_by_role("button", name="Create event feed").click()
    expect(page.locator('[data-error-prefix="conditions[0][1]"]')).to_contain_text("number")
    shot(page, "14-feed-builder-validation")
    page.get_by_label("Value").nth(1).fill("100")
    page.get_by_role("button", name="Create event feed").click()
    expect(page.get_by_text("Event feed “Big purchases” saved.")).to_be_visible()
    expect(page.get_by_role("row", name="Big purchases")).to_contain_text("is one of")
    shot(page, "15-feeds")

    page.goto(server.url + f"{P}/data-sources")
    page.get_by_label("Name").fill("Web shop")
    page.get_by_role("button", name="Add data source").click()
    expect(page.get_by_text("Data source Web shop created")).to_be_visible()
    shot(page, "16-data-sources")

    server.send(1, tealium_trace_id="trace-ui-1", customer={"email": "ada@example.com"})
    server.vendor.wait_for(1, "/traced")
    page.goto(server.url + f"{P}/traces")
    page.get_by_label("Trace id").fill("trace-ui-1")
    page.get_by_role("button", name="Show trace").click()
    expect(page.locator(".timeline")).to_contain_text("Traced action")
    expect(page.locator(".timeline")).to_contain_text("success")
    shot(page, "17-trace")

    for name, url, heading in (
        ("18-attributes", f"{P}/attributes", "Attributes"),
        ("19-settings", f"{P}/settings", "Profile settings"),
        ("20-audit", f"{P}/audit", "Audit log"),
        ("21-catalog", "/catalog", "Marketplace"),
        ("22-catalog-webhook", "/catalog/webhook", "Webhook"),
        (
            "23-action-editor",
            f"{P}/connectors/{made['id']}/actions/{made['actions'][0]['id']}",
            "Edit “Traced action”",
        ),
        (
            "24-connector-reports-action",
            f"{P}/connectors/{made['id']}/actions/{made['actions'][0]['id']}/reports?range=7d",
            "Traced hook › Traced action",
        ),
    ):
        page.goto(server.url + url)
        expect(page.get_by_role("heading", name=heading, exact=True)).to_be_visible()
        shot(page, name)
    page.goto(server.url + "/catalog?q=slack")
    expect(page.locator(".type-card")).to_have_count(1)

    page.goto(server.url + f"{P}/settings")
    page.get_by_label("Enforce consent").check()
    page.get_by_role("button", name="Save settings").click()
    expect(page.get_by_text("Settings saved.")).to_be_visible()
    assert server.call("GET", API)["consent"]["enforcement"] is True

    page.goto(server.url + f"{P}/connectors/con_nothing")
    expect(page.get_by_role("heading", name="Page not found")).to_be_visible()
    shot(page, "25-error-page")

    page.set_viewport_size({"width": 820, "height": 1000})
    page.goto(server.url + P + "/")
    shot(page, "26-landing-tablet")
    page.goto(server.url + f"{P}/connectors/{made['id']}")
    shot(page, "27-connector-tablet")


def test_audiences_and_visitor_lookup(page: Page, server: Server) -> None:
    paths = server.call("GET", "/api/v1/openapi.json")["paths"]
    if "/api/v1/profiles/{account}/{profile}/audiences" not in paths:
        pytest.skip("AudienceStream is not installed on this server")
    server.call(
        "POST",
        f"{API}/visitor-attributes",
        {
            "name": "purchase_count",
            "scope": "visitor",
            "type": "number",
            "rules": [
                {
                    "when": [
                        [{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]
                    ],
                    "operation": "increment",
                    "value": 1,
                }
            ],
        },
    )
    page.goto(server.url + f"{P}/visitor-attributes")
    expect(page.locator("[data-audience-list]")).to_contain_text("purchase_count")
    shot(page, "28-visitor-attributes")

    page.goto(server.url + f"{P}/audiences")
    page.get_by_role("link", name="New audience").click()
    page.get_by_label("Name").fill("Buyers")
    page.get_by_label("Attribute").first.fill("purchase_count")
    page.get_by_label("Value").first.fill("1")
    page.get_by_role("button", name="Create audience").click()
    expect(page.get_by_text("Audience “Buyers” saved.")).to_be_visible()
    expect(page.locator("[data-audience-list]")).to_contain_text("purchase_count gte 1")
    shot(page, "29-audiences")

    server.send(2, tealium_visitor_id="visitor-ui-42")
    lookup = f"{P}/visitors?visitor_id=visitor-ui-42"

    def counted() -> bool:
        page.goto(server.url + lookup)
        card = page.locator("[data-visitor]")
        expect(card).not_to_contain_text("Loading")
        return "Buyers" in card.inner_text()

    wait_until(counted, timeout=15, interval=0.5)
    expect(page.locator("[data-visitor]")).to_contain_text("purchase_count")
    shot(page, "30-visitor-lookup")
    page.get_by_role("button", name="Erase this visitor…").click()
    page.locator("#confirm-dialog").get_by_role("button", name="Erase visitor").click()
    expect(page.get_by_text("Visitor visitor-ui-42 erased.")).to_be_visible()


def test_every_catalog_type_can_be_added_through_the_workflow(page: Page, server: Server) -> None:
    """Issue 4: each of the 17 types, from its card to its connector, filling only what the
    form marks required (URLs point at the local mock; no request is sent)."""
    types = server.call("GET", "/api/v1/catalog")["types"]
    assert len(types) >= 17
    for kind in types:
        page.goto(server.url + P + "/")
        page.get_by_role("link", name="Add connector").first.click()
        title = page.get_by_text(kind["name"], exact=True)
        page.locator(".type-card").filter(has=title).click()
        expect(page.get_by_role("heading", name=f"Add {kind['name']}")).to_be_visible()
        name = f"Added {kind['id']}"
        page.get_by_label("Connector name").fill(name)
        required = page.locator("[data-config-field]", has=page.locator(".req"))
        for n in range(required.count()):
            field = required.nth(n)
            control = field.locator("input, select, textarea").first
            tag = control.evaluate("e => e.tagName + ':' + (e.type || '')")
            if tag.startswith("SELECT"):
                continue  # a required choice starts on a valid option
            if tag == "INPUT:url" or "url" in (field.get_attribute("data-config-field") or ""):
                control.fill(server.vendor.url)
            elif tag == "INPUT:number":
                control.fill("1")
            else:
                control.fill("test-value-1")
        page.get_by_role("button", name="Save and add actions").click()
        expect(page.get_by_role("heading", name=f"Add an action to {name}")).to_be_visible()
    made = {c["type"] for c in server.call("GET", f"{API}/connectors")["connectors"]}
    assert {kind["id"] for kind in types} <= made
