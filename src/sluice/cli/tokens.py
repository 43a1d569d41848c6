"""``sluice tokens``: create, list and revoke API tokens."""

from __future__ import annotations

import json

import click

from sluice.auth import tokens as token_store
from sluice.auth.principals import ROLES
from sluice.cli._base import CLI_ACTOR, database_option, open_database, print_table
from sluice.config import audit


@click.group()
def tokens() -> None:
    """API tokens for the management API (Authorization: Bearer ...)."""


@tokens.command("create")
@click.option("--name", required=True, help="What the token is for (shown in the audit log).")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What it may do.")
@click.option(
    "--profile",
    "profiles",
    multiple=True,
    metavar="ACCOUNT/PROFILE",
    help="Limit the token to this profile (repeatable); default: every profile.",
)
@database_option
def create(name: str, role: str, profiles: tuple[str, ...], database: str) -> None:
    """Create a token and print it alone on the last line (it is shown only this once)."""
    db = open_database(database)
    try:
        created, secret = token_store.create_token(db, name, role, list(profiles) or None)
        with db.begin() as conn:
            audit.record(
                conn,
                CLI_ACTOR,
                "token.create",
                created["id"],
                details={"name": created["name"], "role": role, "profiles": created["profiles"]},
            )
    finally:
        db.dispose()
    scope = ", ".join(profiles) if profiles else "every profile"
    click.echo(f"created token {created['id']} {name!r}: role {role}, {scope}")
    click.echo("store it now, it is not shown again:")
    click.echo(secret)


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@database_option
def list_(as_json: bool, database: str) -> None:
    """List the tokens that are not revoked."""
    db = open_database(database)
    try:
        found = token_store.list_tokens(db)
    finally:
        db.dispose()
    if as_json:
        click.echo(json.dumps({"tokens": found}, indent=2))
        return
    if not found:
        click.echo("no tokens")
        return
    rows = [
        (t["id"], t["name"], t["role"], ",".join(t["profiles"] or ["*"]), t["created_at"])
        for t in found
    ]
    print_table(("ID", "NAME", "ROLE", "PROFILES", "CREATED"), rows)


@tokens.command("revoke")
@click.argument("token_id", metavar="ID")
@database_option
def revoke(token_id: str, database: str) -> None:
    """Revoke a token: it stops working at once."""
    db = open_database(database)
    try:
        token_store.revoke_token(db, token_id)
        with db.begin() as conn:
            audit.record(conn, CLI_ACTOR, "token.revoke", token_id)
    finally:
        db.dispose()
    click.echo(f"revoked token {token_id}")
