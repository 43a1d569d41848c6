"""Test an action: render the draft on a sample event, show the requests, maybe send them.

The same mapping, build and classify code as real deliveries, on the draft (not the
published version), with secrets masked in everything shown.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sluice import jsonutil
from sluice.config import drafts
from sluice.config.profiles import Profile
from sluice.connectors.definition import ActionInput, BuildContext, HttpRequest
from sluice.connectors.masking import mask_request, mask_response
from sluice.delivery.transport import AiohttpTransport, Transport, TransportError
from sluice.engine.mapping import compile_mappings
from sluice.engine.templates import TemplateEngine
from sluice.errors import DeliveryError, MappingError, ValidationFailed
from sluice.ids import new_event_id
from sluice.services import Services
from sluice.timeutil import iso


def _load(
    services: Services, profile: Profile, connector_id: str, action_id: str
) -> tuple[Any, Any, dict[str, Any]]:
    with services.db.read() as conn:
        connector = drafts.connector_row(conn, profile.id, connector_id)
        action = drafts.action_row(conn, connector_id, action_id)
    config = {**jsonutil.loads(connector.configuration), **services.box.decrypt(connector.secrets)}
    return connector, action, config


async def try_action(
    services: Services,
    profile: Profile,
    connector_id: str,
    action_id: str,
    event: Any,
    send: bool,
) -> dict[str, Any]:
    if not isinstance(event, dict):
        raise ValidationFailed.field("event", "must be a JSON object")
    connector, action, config = await asyncio.to_thread(
        _load, services, profile, connector_id, action_id
    )
    ctype = drafts.connector_type(services.registry, connector.type)
    action_type = ctype.action(action.type)
    if action_type is None:
        raise ValidationFailed.field("type", f"unknown action type {action.type}")
    secrets = [str(config[n]) for n in ctype.secret_fields() if config.get(n) not in (None, "")]
    data = {"event_id": new_event_id(), "received_at": iso(time.time()), **event}
    result: dict[str, Any] = {"requests": [], "responses": None, "error": None}
    try:
        mappings = compile_mappings(action_type, jsonutil.loads(action.mappings), TemplateEngine())
        params = mappings.resolve(data)
        context = BuildContext(
            config=config,
            base_url=config.get("base_url") or ctype.base_url,
            action_id=action.id,
            connector_id=connector.id,
        )
        inputs = [ActionInput(params, data, data["event_id"], f"{data['event_id']}:{action.id}")]
        requests = action_type.build(context, inputs)
    except MappingError as exc:
        result["error"] = {"category": "mapping", "message": str(exc)}
        return result
    except DeliveryError as exc:
        result["error"] = {"category": exc.category, "message": exc.message}
        return result
    except (ValueError, TypeError, KeyError) as exc:
        result["error"] = {"category": "mapping", "message": str(exc) or type(exc).__name__}
        return result
    result["requests"] = [mask_request(r, secrets) for r in requests]
    if send:
        result["responses"], result["error"] = await _send(
            services, requests, action_type.classify, secrets, config
        )
    return result


async def _send(
    services: Services,
    requests: list[HttpRequest],
    classify: Any,
    secrets: list[str],
    config: dict[str, Any],
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    pipeline = services.pipeline
    own: Transport | None = None
    if pipeline is not None:
        transport: Transport = pipeline.transport
    else:
        transport = own = AiohttpTransport(
            allow_private=services.settings.allow_private_destinations
        )
    timeout = float(config.get("timeout_seconds") or 10)
    responses: list[dict[str, Any]] = []
    error: dict[str, Any] | None = None
    try:
        for request in requests:
            try:
                response = await transport.send(request, timeout)
            except TransportError as exc:
                error = {"category": exc.kind, "message": exc.message}
                break
            shown = mask_response(response, secrets)
            responses.append({**shown, "elapsed_ms": round(response.elapsed_ms, 1)})
            verdict = classify(request, response)
            failures = verdict if isinstance(verdict, list) else [verdict]
            first = next((f for f in failures if f is not None), None)
            if first is not None and error is None:
                error = {"category": first.category, "message": first.message}
    finally:
        if own is not None:
            await own.close()
    return responses, error
