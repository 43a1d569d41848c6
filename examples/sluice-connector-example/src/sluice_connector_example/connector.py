"""Example Echo: POST each event, with a message, to a URL of your choice.

A complete connector type in one small module: declarative fields plus one ``build``
function. It imports only what plugins may use: ``sluice.connectors``,
``sluice.connectors.helpers`` and ``sluice.errors``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sluice.connectors import (
    ActionInput,
    ActionType,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
)
from sluice.connectors.helpers import as_text, is_blank, json_request, require_url


def build_echo(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    token = str(ctx.config.get("token") or "").strip()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    requests = []
    for index, event in enumerate(inputs):
        message = event.params.get("message")
        payload = {
            "message": None if is_blank(message) else as_text(message, "message"),
            "event": dict(event.data),
        }
        requests.append(
            json_request(
                require_url(event.params, "url"),
                payload,
                # Stable across retries: the receiver can drop a repeat.
                headers={**headers, "Idempotency-Key": event.idempotency_key},
                items=(index,),
                sensitive_headers=frozenset({"authorization"}),
            )
        )
    return requests


ECHO_EVENT = ActionType(
    id="echo_event",
    name="Echo Event",
    description="POST the event as JSON, with an optional message, to a URL.",
    parameters=(
        Field(
            "url",
            "URL",
            "url",
            required=True,
            group="Request",
            help="Where to send the event, e.g. a request bin for testing.",
        ),
        Field(
            "message",
            "Message",
            "text",
            group="Request",
            help="A note to send along, usually a template such as Order {{ order_id }}.",
        ),
    ),
    build=build_echo,
    consent_categories=("monitoring",),
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#0f766e"/>
  <text x="32" y="44" text-anchor="middle" font-family="Helvetica, Arial, sans-serif"
        font-size="34" font-weight="700" fill="#ffffff">E</text>
</svg>
"""

CONNECTOR = ConnectorType(
    id="example_echo",
    name="Example Echo",
    description="Send each event, with a message, to a URL: an example third-party connector.",
    configuration=(
        Field(
            "token",
            "Bearer token",
            secret=True,
            group="Credentials",
            help="Sent as Authorization: Bearer <token> when set.",
        ),
    ),
    actions=(ECHO_EVENT,),
    what_you_need=("An HTTPS endpoint that accepts JSON POST requests.",),
    icon_svg=ICON_SVG,
)
