"""Example Echo passes Sluice's conformance kit, builds the recorded request, maps errors."""

from __future__ import annotations

from sluice.connectors.testing import (
    ErrorCase,
    RecordedExample,
    check_definition,
    check_error_mapping,
    check_example,
    response,
)
from sluice.errors import FatalDelivery, RetryableDelivery

from sluice_connector_example.connector import CONNECTOR


def test_conforms() -> None:
    check_definition(CONNECTOR)


def test_echo_event() -> None:
    check_example(
        CONNECTOR,
        RecordedExample(
            action="echo_event",
            config={"token": "tok-1234"},
            inputs=[{"url": "https://echo.example.com/in", "message": "Order A-1"}],
            data=[{"event_id": "e-1", "order_id": "A-1"}],
            expected=[
                {
                    "method": "POST",
                    "url": "https://echo.example.com/in",
                    "headers": {
                        "Authorization": "Bearer tok-1234",
                        "Content-Type": "application/json",
                        "Idempotency-Key": "evt_1:echo_event",
                    },
                    "json": {
                        "message": "Order A-1",
                        "event": {"event_id": "e-1", "order_id": "A-1"},
                    },
                }
            ],
        ),
    )


def test_errors() -> None:
    check_error_mapping(
        CONNECTOR,
        "echo_event",
        [
            ErrorCase(response(200), None, id="ok"),
            ErrorCase(response(401), FatalDelivery, "auth", id="auth"),
            ErrorCase(
                response(429, headers={"Retry-After": "30"}),
                RetryableDelivery,
                "rate_limit",
                30.0,
                id="rate-limit",
            ),
            ErrorCase(response(503), RetryableDelivery, "http_5xx", id="outage"),
        ],
    )
