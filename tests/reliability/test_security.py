"""Security: secrets never leak; private destinations are refused when the setting is off.

The secret check runs a real ``sluice serve`` (so its log file is real): a webhook with a
distinctive bearer token whose vendor fails, then every GET route of the management API,
the CSV exports, versions and their diff, the action test route and the error records,
and finally the log file, are searched for the token. The SSRF checks drive the real
transport with a resolver the test injects, so no test makes a DNS query. (401 and 403 on
every route: ``tests/api/test_authz.py``.)
"""

from __future__ import annotations

import asyncio
import re
import socket
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from sluice.connectors.definition import HttpRequest
from sluice.delivery.transport import AiohttpTransport, TransportError
from tests.reliability._common import stack, summary
from tests.support.server import http
from tests.support.vendor import Reply, VendorMock

pytestmark = pytest.mark.reliability

SECRET = "sk-CANARY-7f3a9b2c4d5e6f708192a3b4c5d6e7f8"


def _searched(text: str) -> bool:
    return SECRET in text or SECRET[3:] in text


def test_secrets_never_appear_in_responses_exports_versions_or_logs(tmp_path: Path) -> None:
    vendor = VendorMock().start()
    vendor.respond("/in", Reply(status=500, body={"echo": "nope"}))
    checked = 0
    try:
        with stack(tmp_path) as s:
            cid, aid = s.add_webhook(
                vendor.url + "/in",
                configuration={"auth_type": "bearer", "token": SECRET, "max_attempts": 1},
            )
            # A second version, so there is a diff to show.
            status, body = s.api(
                "PATCH", f"/profiles/acme/main/connectors/{cid}", {"name": "Hook 2"}
            )
            assert status == 200, body
            assert s.api("POST", f"/profiles/acme/main/connectors/{cid}/publish", {})[0] == 201
            for n in range(5):
                assert (
                    http("POST", s.server.url + "/event", {"tealium_account": "acme", "n": n})[0]
                    == 200
                )
            deadline = time.monotonic() + 30
            while len(s.errors()) < 5 and time.monotonic() < deadline:
                time.sleep(0.2)
            assert len(s.errors()) >= 5
            # The vendor did get the real token: the secret is used, only never shown.
            assert vendor.received("/in")[0].headers["authorization"] == f"Bearer {SECRET}"
            known = {
                "account": "acme",
                "profile": "main",
                "connector_id": cid,
                "action_id": aid,
                "version": "1",
                "a": "1",
                "b": "2",
            }
            status, schema = s.api("GET", "/openapi.json")
            assert status == 200
            texts: list[tuple[str, str]] = []
            for path, item in schema["paths"].items():
                if "get" not in item:
                    continue
                names = re.findall(r"{(\w+)}", path)
                if any(n not in known for n in names) or path.endswith("/live"):
                    continue  # the live stream never ends; its events are the counters
                url = path
                for name in names:
                    url = url.replace("{" + name + "}", known[name])
                status, body = http("GET", s.server.url + url, token=s.token)
                assert status < 500, (url, status, body)
                texts.append((url, str(body)))
            tried = {
                "test": s.api(
                    "POST",
                    f"/profiles/acme/main/connectors/{cid}/actions/{aid}/test",
                    {"event": {"tealium_account": "acme"}, "send": True},
                ),
                "diff": s.api("GET", f"/profiles/acme/main/connectors/{cid}/versions/1/diff/2"),
            }
            for name, (status, body) in tried.items():
                assert status < 500, (name, body)
                texts.append((name, str(body)))
            assert "Bearer ********" in str(tried["test"][1])
            texts.append(("log", s.server.log_path.read_text(errors="replace")))
            checked = len(texts)
            leaks = [where for where, text in texts if _searched(text)]
            assert any("errors.csv" in w for w, _ in texts)
            assert any("/versions" in w for w, _ in texts)
        # After a graceful stop: the whole log file, not only its tail.
        log = "".join(p.read_text(errors="replace") for p in tmp_path.glob("*.log"))
        if _searched(log):
            leaks.append("log file")
        summary(
            "secrets",
            sent=5,
            accepted=5,
            delivered=0,
            errored=5,
            lost=0,
            duplicated=0,
            note=f"{checked} responses, exports and logs searched, {len(leaks)} leaks",
        )
        assert leaks == []
    finally:
        vendor.stop()


class MapResolver(AbstractResolver):
    """Names to fixed addresses: a hostile DNS, without any DNS."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        address = self.names.get(host)
        if address is None:
            raise OSError(f"no such name in this test: {host}")
        fam = socket.AF_INET6 if ":" in address else socket.AF_INET
        return [
            {
                "hostname": host,
                "host": address,
                "port": port,
                "family": fam,
                "proto": 0,
                "flags": socket.AI_NUMERICHOST,
            }
        ]

    async def close(self) -> None:
        return None


NAMES = {
    "localhost": "127.0.0.1",
    "vendor.example": "10.1.2.3",
    "metadata.example": "169.254.169.254",
    "six.example": "::1",
    "mapped.example": "::ffff:127.0.0.1",
    "lan.example": "192.168.1.10",
    "carrier.example": "100.64.0.1",
}
REFUSED = [
    "http://127.0.0.1:9/x",
    "http://127.1.2.3/x",
    "http://10.0.0.1/x",
    "http://172.16.5.4/x",
    "http://192.168.0.1/x",
    "http://169.254.169.254/latest/meta-data/",
    "http://0.0.0.0/x",
    "http://[::1]/x",
    "http://[::ffff:127.0.0.1]/x",
    "http://[::ffff:10.0.0.1]/x",
    "http://[fe80::1]/x",
    "http://[fc00::1]/x",
    *[f"http://{name}/x" for name in NAMES],
]


def _never_leave_loopback(loop: asyncio.AbstractEventLoop) -> None:
    """Should the guard ever regress, the test fails without sending a packet anywhere."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise OSError("this test never opens a connection")

    loop.sock_connect = refuse  # type: ignore[method-assign]
    loop.create_connection = refuse  # type: ignore[method-assign]


def _only_loopback(loop: asyncio.AbstractEventLoop) -> None:
    """Connections to 127.0.0.1 only: a redirect that were followed fails, unsent."""
    connect = loop.sock_connect

    async def sock_connect(sock: socket.socket, address: Any) -> None:
        if address[0] != "127.0.0.1":
            raise OSError(f"this test only connects to 127.0.0.1, not {address[0]}")
        await connect(sock, address)

    loop.sock_connect = sock_connect  # type: ignore[method-assign]


@pytest.mark.parametrize("url", REFUSED, ids=REFUSED)
def test_private_destinations_are_refused(url: str) -> None:
    async def go() -> TransportError:
        _never_leave_loopback(asyncio.get_running_loop())
        transport = AiohttpTransport(allow_private=False, resolver=MapResolver(NAMES))
        try:
            with pytest.raises(TransportError) as caught:
                await transport.send(HttpRequest("POST", url, body=b"{}"), timeout=2)
            return caught.value
        finally:
            await transport.close()

    error = asyncio.run(go())
    assert error.kind == "connection"
    assert error.refused, error.message


def test_redirects_to_private_addresses_are_not_followed() -> None:
    vendor = VendorMock().start()
    vendor.respond("/go", Reply(status=302, headers={"Location": "http://10.0.0.1/admin"}))
    vendor.respond("/local", Reply(status=307, headers={"Location": f"{vendor.url}/second"}))

    async def go() -> list[Any]:
        _only_loopback(asyncio.get_running_loop())
        # allow_private=True only to reach the mock on 127.0.0.1 at all.
        transport = AiohttpTransport(allow_private=True, resolver=MapResolver(NAMES))
        try:
            return [
                await transport.send(HttpRequest("GET", vendor.url + path), timeout=2)
                for path in ("/go", "/local")
            ]
        finally:
            await transport.close()

    try:
        first, second = asyncio.run(go())
        assert (first.status, second.status) == (302, 307)
        assert [r.path for r in vendor.received()] == ["/go", "/local"]
    finally:
        vendor.stop()


def test_the_pipeline_records_refused_destinations_as_connection_errors(
    tmp_path: Path,
) -> None:
    with stack(tmp_path, env={"SLUICE_ALLOW_PRIVATE_DESTINATIONS": ""}) as s:
        s.add_webhook("http://127.0.0.1:9/in", configuration={"max_attempts": 1})
        assert http("POST", s.server.url + "/event", {"tealium_account": "acme"})[0] == 200
        deadline = time.monotonic() + 20
        while not s.errors() and time.monotonic() < deadline:
            time.sleep(0.2)
        [record] = s.errors()
        assert record["category"] == "connection"
        assert "private" in record["message"] or "refused" in record["message"]
