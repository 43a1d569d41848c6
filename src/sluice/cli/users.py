"""``sluice users``: create users of the web interface."""

from __future__ import annotations

import click

from sluice.auth import users as user_store
from sluice.auth.principals import ROLES
from sluice.cli._base import CLI_ACTOR, database_option, open_database
from sluice.config import audit


@click.group()
def users() -> None:
    """Users who log in to the web interface."""


@users.command("create")
@click.option("--email", required=True, help="The login.")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the user may do.")
@click.option("--password", default=None, help="At least 8 characters; default: generated.")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    metavar="ACCOUNT/PROFILE",
    help="Limit the user to this profile (repeatable); default: every profile.",
)
@database_option
def create(
    email: str, role: str, password: str | None, profiles: tuple[str, ...], database: str
) -> None:
    """Create a user; a generated password is printed alone on the last line."""
    db = open_database(database)
    try:
        created, generated = user_store.create_user(
            db, email, role, password, list(profiles) or None
        )
        with db.begin() as conn:
            audit.record(
                conn,
                CLI_ACTOR,
                "user.create",
                created["id"],
                details={"email": created["email"], "role": role, "profiles": created["profiles"]},
            )
    finally:
        db.dispose()
    scope = ", ".join(profiles) if profiles else "every profile"
    click.echo(f"created user {created['id']} {created['email']}: role {role}, {scope}")
    if generated:
        click.echo("generated password (store it now, it is not shown again):")
        click.echo(generated)
