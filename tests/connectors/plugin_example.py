"""A third-party connector type as a plugin package would ship it (used by the tests)."""

from __future__ import annotations

from collections.abc import Sequence

from sluice.connectors import (
    ActionInput,
    ActionType,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
    Resource,
)
from sluice.connectors.helpers import json_request, require_text
from sluice.errors import FatalDelivery


def build_track(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    api_key = ctx.config.get("api_key")
    if not api_key:
        raise FatalDelivery("auth", "no API key is configured")
    return [
        json_request(
            f"{ctx.base_url}/v1/track",
            {"event": require_text(event.params, "event_name"), "properties": dict(event.data)},
            headers={"X-Api-Key": str(api_key), "Idempotency-Key": event.idempotency_key},
            items=(index,),
            sensitive_headers=frozenset({"x-api-key"}),
        )
        for index, event in enumerate(inputs)
    ]


CONNECTOR = ConnectorType(
    id="echo_analytics",
    name="Echo Analytics",
    description="Track events in Echo Analytics, an example vendor.",
    configuration=(
        Field(
            "api_key",
            "API key",
            required=True,
            secret=True,
            group="Credentials",
            help="The key from Settings > API in Echo.",
        ),
    ),
    actions=(
        ActionType(
            id="track_event",
            name="Track Event",
            description="Record one event.",
            parameters=(
                Field(
                    "event_name",
                    "Event name",
                    required=True,
                    group="Event",
                    help="The name Echo shows for the event.",
                ),
            ),
            build=build_track,
            consent_categories=("analytics",),
        ),
    ),
    what_you_need=("An Echo Analytics account and its API key.",),
    resources=(Resource("Echo API reference", "https://echo.example/docs/api"),),
    base_url="https://api.echo.example",
)
