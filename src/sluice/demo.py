"""``sluice serve --demo``: a demo profile that shows the whole product moving at once.

It seeds the profile ``demo/main`` with feeds, a data source and connectors that deliver to
a demo vendor built into this process (``/demo-vendor/...``): one always succeeds, one
batches, one is flaky (retries show), one refuses events without an email (errors show),
and one has unpublished changes. A gentle stream of sample events then runs through the
real collect path, and an admin login is printed.
"""

from __future__ import annotations

import asyncio
import logging
import random
import secrets
from typing import Any

import orjson
from sqlalchemy import func, select
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from sluice.auth import users
from sluice.auth.principals import SYSTEM
from sluice.config import actions, connectors, data_sources, event_feeds, profiles, publishing
from sluice.config.profiles import Profile
from sluice.errors import Conflict, NotFound
from sluice.services import Services
from sluice.storage.tables import connectors as connectors_table
from sluice.storage.tables import users as users_table

log = logging.getLogger("sluice.demo")

DEMO_ACCOUNT = "demo"
DEMO_PROFILE = "main"
DEMO_EMAIL = "admin@demo.local"


def seed_demo(services: Services, base_url: str = "http://127.0.0.1:8000") -> str:
    """Create what is missing of the demo; returns how to log in.

    The admin's password is generated anew on every start: a stored one can never be
    shown again.
    """
    db = services.db
    try:
        profile = profiles.get(db, DEMO_ACCOUNT, DEMO_PROFILE)
    except NotFound:
        try:
            profile = profiles.create(db, SYSTEM, DEMO_ACCOUNT, DEMO_PROFILE)
        except Conflict:  # another process created it meanwhile
            profile = profiles.get(db, DEMO_ACCOUNT, DEMO_PROFILE)
    with db.read() as conn:
        has_connectors = conn.execute(
            select(func.count())
            .select_from(connectors_table)
            .where(connectors_table.c.profile_id == profile.id)
        ).scalar()
    if not has_connectors:
        _seed_configuration(services, profile, base_url.rstrip("/") + "/demo-vendor")
    password = secrets.token_urlsafe(12)
    with db.read() as conn:
        user_id = conn.execute(
            select(users_table.c.id).where(users_table.c.email == DEMO_EMAIL)
        ).scalar()
    if user_id is None:
        users.create_user(db, DEMO_EMAIL, "admin", password, [f"{DEMO_ACCOUNT}/{DEMO_PROFILE}"])
    else:
        users.update_user(db, user_id, {"password": password, "disabled": False})
    return (
        f"Demo profile {DEMO_ACCOUNT}/{DEMO_PROFILE} is ready, with sample events flowing.\n"
        f"Open {base_url.rstrip('/')}/ and log in as {DEMO_EMAIL} with the password {password}"
    )


def _connector(
    services: Services,
    profile: Profile,
    body: dict[str, Any],
    action_bodies: list[dict[str, Any]],
    publish: bool = True,
) -> str:
    created = connectors.create_connector(services, SYSTEM, profile, {**body, "enabled": True})
    for action in action_bodies:
        actions.create_action(services, SYSTEM, profile, created["id"], {"enabled": True, **action})
    if publish:
        publishing.publish(services, SYSTEM, profile, created["id"], {"note": "Demo setup"})
    return str(created["id"])


def _seed_configuration(services: Services, profile: Profile, vendor: str) -> None:
    db = services.db
    data_sources.create(db, SYSTEM, profile, {"name": "Web site", "platform": "web"})
    purchases = event_feeds.create(
        db,
        SYSTEM,
        profile,
        {
            "name": "Purchases",
            "conditions": [
                [{"attribute": "tealium_event", "operator": "equals", "value": "purchase"}]
            ],
        },
    )
    signups = event_feeds.create(
        db,
        SYSTEM,
        profile,
        {
            "name": "Sign-ups",
            "conditions": [
                [{"attribute": "tealium_event", "operator": "equals", "value": "signup"}]
            ],
        },
    )
    purchase_source = {"event_feed": purchases["id"], "data_source": None}
    signup_source = {"event_feed": signups["id"], "data_source": None}
    fast = {"first_retry_seconds": 5, "max_attempts": 4}
    _connector(
        services,
        profile,
        {"type": "webhook", "name": "Order webhook (prod)", "configuration": fast},
        [
            {
                "name": "Send orders",
                "type": "send_event_data",
                "source": purchase_source,
                "mappings": [{"parameter": "url", "value": f"{vendor}/orders"}],
            }
        ],
    )
    dev = _connector(
        services,
        profile,
        {"type": "webhook", "name": "Order webhook (dev)", "configuration": fast},
        [
            {
                "name": "Send orders",
                "type": "send_event_data",
                "source": purchase_source,
                "mappings": [{"parameter": "url", "value": f"{vendor}/orders-dev"}],
            }
        ],
    )
    connectors.patch_connector(services, SYSTEM, profile, dev, {"name": "Order webhook (dev v2)"})
    _connector(
        services,
        profile,
        {"type": "webhook", "name": "Analytics batch", "configuration": fast},
        [
            {
                "name": "All events in batches",
                "type": "send_batched_data",
                "source": {"event_feed": "all_events", "data_source": None},
                "mappings": [
                    {"parameter": "url", "value": f"{vendor}/batch"},
                    {"parameter": "max_batch_size", "value": 20},
                    {"parameter": "max_batch_age_seconds", "value": 5},
                ],
            }
        ],
    )
    _connector(
        services,
        profile,
        {"type": "slack", "name": "Ops alerts", "configuration": fast},
        [
            {
                "name": "New sign-up",
                "type": "post_channel_message",
                "source": signup_source,
                "mappings": [
                    {"parameter": "webhook_url", "value": f"{vendor}/slack"},
                    {
                        "parameter": "message",
                        "template": "New sign-up: {{ email | default: 'unknown' }}",
                    },
                ],
            }
        ],
    )
    _connector(
        services,
        profile,
        {
            "type": "webhook",
            "name": "CRM sync (sandbox)",
            "configuration": {"auth_type": "bearer", "token": "demo-crm-token", **fast},
        },
        [
            {
                "name": "Upsert customer",
                "type": "send_custom_request",
                "source": signup_source,
                "consent_categories": ["crm"],
                "mappings": [
                    {"parameter": "method", "value": "POST"},
                    {"parameter": "url", "value": f"{vendor}/crm"},
                    {
                        "parameter": "body",
                        "template": '{"email": {{ email | json }}, "plan": {{ plan | json }}}',
                    },
                ],
            }
        ],
    )


# --- the demo vendor -------------------------------------------------------------------


async def demo_vendor(request: Request) -> Response:
    """Answers like a vendor would: mostly fine, sometimes not, on purpose."""
    name = request.path_params["name"]
    body = await request.body()
    await asyncio.sleep(random.uniform(0.005, 0.03))
    if name == "slack" and random.random() < 0.25:
        return Response("service busy", status_code=503)
    if name == "crm":
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = {}
        if not isinstance(data, dict) or not data.get("email"):
            return Response(
                orjson.dumps({"error": "email is required", "field": "email"}),
                status_code=422,
                media_type="application/json",
            )
    if name == "slack":
        return Response("ok", media_type="text/plain")
    return Response(b'{"ok": true}', media_type="application/json")


ROUTES = [Route("/demo-vendor/{name}", demo_vendor, methods=["POST", "PUT"])]


# --- the event stream ------------------------------------------------------------------

PAGES = ["/", "/shoes", "/shoes/trail-runner", "/cart", "/checkout", "/blog/spring"]


def sample_event(rng: random.Random) -> dict[str, Any]:
    visitor = f"v{rng.randint(1, 40):03d}"
    event: dict[str, Any] = {
        "tealium_account": DEMO_ACCOUNT,
        "tealium_profile": DEMO_PROFILE,
        "tealium_visitor_id": visitor,
        "consent_categories": rng.choice(["analytics,email,crm", "analytics", "email,crm"]),
    }
    roll = rng.random()
    if roll < 0.6:
        event.update(tealium_event="page_view", page_path=rng.choice(PAGES))
    elif roll < 0.85:
        event.update(
            tealium_event="purchase",
            order_id=f"A{rng.randint(1000, 9999)}",
            order_total=round(rng.uniform(10, 300), 2),
            currency="EUR",
        )
    else:
        event.update(tealium_event="signup", plan=rng.choice(["free", "pro"]))
        if rng.random() < 0.7:
            event["email"] = f"{visitor}@example.com"
    return event


async def stream_events(services: Services, every: float = 0.8) -> None:
    from sluice.collect.routes import accept_events
    from sluice.collect.validate import CollectError

    rng = random.Random()
    while True:
        await asyncio.sleep(every)
        pipeline = services.pipeline
        if pipeline is None or not pipeline.ready:
            continue
        try:
            await accept_events(pipeline, [sample_event(rng)])
        except CollectError as exc:
            log.debug("demo event refused: %s", exc.message)
