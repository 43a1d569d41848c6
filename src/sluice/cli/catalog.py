"""``sluice catalog``: the connector types this installation knows (plugins included)."""

from __future__ import annotations

import json

import click

from sluice.cli._base import database_option, print_table
from sluice.connectors.catalog_json import summary_json
from sluice.connectors.registry import load_registry


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print GET /api/v1/catalog's JSON.")
@database_option
def catalog(as_json: bool, database: str) -> None:
    """List the connector types. (--database is accepted but not needed.)"""
    del database  # the catalog is code, not data
    registry = load_registry()
    if as_json:
        click.echo(json.dumps({"types": [summary_json(ct) for ct in registry.all()]}, indent=2))
        return
    rows = [
        (ct.id, ct.name, str(len(ct.actions)), ",".join(ct.data_types)) for ct in registry.all()
    ]
    print_table(("ID", "NAME", "ACTIONS", "DATA TYPES"), rows)
