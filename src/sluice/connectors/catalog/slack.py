"""Slack: post messages to a channel through an incoming webhook (SPEC §8, ids fixed)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from sluice.connectors.definition import (
    ActionInput,
    ActionType,
    BuildContext,
    ConnectorType,
    Field,
    HttpRequest,
    HttpResponse,
    Outcome,
    Resource,
    classify_status,
)
from sluice.connectors.helpers import as_text, is_blank, json_request, require, require_url
from sluice.errors import FatalDelivery, MappingError, RetryableDelivery

MAX_BLOCKS = 50  # Slack refuses messages with more blocks than this.

# What Slack answers in the body of a failed incoming-webhook call, and what it means.
# Ones that say the webhook itself is gone or not allowed are auth errors: the URL is the
# credential, and every retry would fail until someone creates a new one.
_AUTH_ERRORS = {
    "invalid_token": "the webhook URL's token is invalid: create a new incoming webhook",
    "no_service": "the incoming webhook was disabled, removed or never existed",
    "no_team": "the Slack workspace of this webhook was not found",
    "team_disabled": "the Slack workspace of this webhook is disabled",
    "action_prohibited": "an admin restricted what this webhook may post",
    "posting_to_general_channel_denied": "only admins may post to this channel",
}
_REQUEST_ERRORS = {
    "invalid_payload": "Slack could not read the message: check the text or blocks",
    "invalid_blocks": "the blocks are not valid Block Kit",
    "invalid_blocks_format": "the blocks must be a JSON array of block objects",
    "no_text": "the message has no text",
    "missing_text_or_fallback_or_attachments": "the message has no text, blocks or attachments",
    "too_many_attachments": "the message has too many attachments",
    "user_not_found": "a user named in the message does not exist",
    "channel_not_found": "the webhook's channel no longer exists",
    "channel_is_archived": "the webhook's channel is archived",
}


def _webhook_url(params: Any) -> str:
    return require_url(params, "webhook_url")


def build_channel_message(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    return [
        json_request(
            _webhook_url(event.params),
            {"text": as_text(require(event.params, "message"), "message")},
            items=(index,),
        )
        for index, event in enumerate(inputs)
    ]


def _blocks(value: Any) -> list[Any]:
    """Blocks as a list; a template usually renders them as JSON text."""
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise MappingError("blocks", f"is not valid JSON: {exc}") from exc
    # What Slack's Block Kit Builder copies out is {"blocks": [...]}: accept it as it is.
    if isinstance(value, dict) and isinstance(value.get("blocks"), list):
        value = value["blocks"]
    if not isinstance(value, list) or not all(isinstance(block, dict) for block in value):
        raise MappingError("blocks", "must be a JSON array of block objects")
    if not value:
        raise MappingError("blocks", "must hold at least one block")
    if len(value) > MAX_BLOCKS:
        raise MappingError("blocks", f"holds {len(value)} blocks; Slack allows {MAX_BLOCKS}")
    return value


def build_enhanced_message(ctx: BuildContext, inputs: Sequence[ActionInput]) -> list[HttpRequest]:
    requests: list[HttpRequest] = []
    for index, event in enumerate(inputs):
        payload: dict[str, Any] = {"blocks": _blocks(require(event.params, "blocks"))}
        text = event.params.get("text")
        if not is_blank(text):
            payload["text"] = as_text(text, "text")
        requests.append(json_request(_webhook_url(event.params), payload, items=(index,)))
    return requests


def classify(request: HttpRequest, response: HttpResponse) -> Outcome:
    """Slack's incoming-webhook answers: 200 ``ok``, else an error code as the body."""
    if 200 <= response.status < 300:
        return None
    code = response.body[:200].decode("utf-8", "replace").strip()
    status = response.status
    if code in _AUTH_ERRORS:
        return FatalDelivery("auth", f"Slack: {code}: {_AUTH_ERRORS[code]}", status_code=status)
    if code in _REQUEST_ERRORS and 400 <= status < 500 and status != 429:
        message = f"Slack: {code}: {_REQUEST_ERRORS[code]}"
        return FatalDelivery("http_4xx", message, status_code=status)
    if code == "rollup_error":
        message = "Slack: rollup_error: an unexpected error on Slack's side"
        return RetryableDelivery("http_5xx", message, status_code=status)
    return classify_status(response)


_WEBHOOK_URL = Field(
    "webhook_url",
    "Webhook URL",
    "url",
    required=True,
    group="Message",
    help="The incoming webhook URL Slack gave you, https://hooks.slack.com/services/...",
)

POST_CHANNEL_MESSAGE = ActionType(
    id="post_channel_message",
    name="Post Channel Message",
    description="Post a text message to the Slack channel of an incoming webhook.",
    parameters=(
        _WEBHOOK_URL,
        Field(
            "message",
            "Message",
            "text",
            required=True,
            group="Message",
            help="The message text, usually a template; Slack mrkdwn formatting works.",
        ),
    ),
    build=build_channel_message,
    consent_categories=("monitoring",),
    idempotent=False,
    classify=classify,
)

POST_ENHANCED_MESSAGE = ActionType(
    id="post_enhanced_message",
    name="Post Enhanced Message",
    description="Post a rich message laid out with Slack Block Kit blocks.",
    parameters=(
        _WEBHOOK_URL,
        Field(
            "blocks",
            "Blocks",
            "list",
            required=True,
            group="Message",
            help=(
                "The Block Kit blocks as a JSON array, usually a template that renders JSON; "
                f"at most {MAX_BLOCKS}."
            ),
        ),
        Field(
            "text",
            "Fallback text",
            "text",
            group="Options",
            help="Shown in notifications and by clients that cannot display blocks.",
        ),
    ),
    build=build_enhanced_message,
    consent_categories=("monitoring",),
    idempotent=False,
    classify=classify,
)

ICON_SVG = """\
<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 64 64" width="64" height="64">
  <rect width="64" height="64" rx="14" fill="#4a154b"/>
  <text x="32" y="44" text-anchor="middle" font-family="Helvetica, Arial, sans-serif"
        font-size="34" font-weight="700" fill="#ffffff">#</text>
</svg>
"""

CONNECTOR = ConnectorType(
    id="slack",
    name="Slack",
    description=(
        "Post messages to a Slack channel through an incoming webhook: alerts on key events, "
        "such as a large order or a failed payment."
    ),
    configuration=(),
    actions=(POST_CHANNEL_MESSAGE, POST_ENHANCED_MESSAGE),
    what_you_need=(
        "A Slack workspace where you may add apps.",
        "An incoming webhook URL for the channel to post to (a Slack app with incoming "
        "webhooks switched on).",
        "Slack accepts about one message per second per webhook: keep the trigger selective.",
    ),
    resources=(
        Resource(
            "Sending messages using incoming webhooks",
            "https://docs.slack.dev/messaging/sending-messages-using-incoming-webhooks/",
        ),
        Resource("Block Kit", "https://docs.slack.dev/block-kit/"),
        Resource("Block Kit Builder", "https://app.slack.com/block-kit-builder"),
        Resource(
            "Formatting message text (mrkdwn)",
            "https://docs.slack.dev/messaging/formatting-message-text/",
        ),
    ),
    icon_svg=ICON_SVG,
)
