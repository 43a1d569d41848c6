"""``sluice serve --demo``: a demo profile and an admin login, so a newcomer sees it work."""

from __future__ import annotations

import secrets

from sqlalchemy import select

from sluice.auth import users
from sluice.auth.principals import SYSTEM
from sluice.config import profiles
from sluice.errors import Conflict, NotFound
from sluice.services import Services
from sluice.storage.tables import users as users_table

DEMO_ACCOUNT = "demo"
DEMO_PROFILE = "main"
DEMO_EMAIL = "admin@demo.local"


def seed_demo(services: Services) -> str:
    """Create what is missing of the demo; returns how to log in.

    The admin's password is generated anew on every start: a stored one can never be
    shown again.
    """
    db = services.db
    try:
        profiles.get(db, DEMO_ACCOUNT, DEMO_PROFILE)
    except NotFound:
        try:
            profiles.create(db, SYSTEM, DEMO_ACCOUNT, DEMO_PROFILE)
        except Conflict:  # another process created it meanwhile
            pass
    password = secrets.token_urlsafe(12)
    with db.read() as conn:
        user_id = conn.execute(
            select(users_table.c.id).where(users_table.c.email == DEMO_EMAIL)
        ).scalar()
    if user_id is None:
        users.create_user(db, DEMO_EMAIL, "admin", password)
    else:
        users.update_user(db, user_id, {"password": password, "disabled": False})
    return (
        f"Demo profile {DEMO_ACCOUNT}/{DEMO_PROFILE} is ready.\n"
        f"Log in as {DEMO_EMAIL} with the password {password}"
    )
