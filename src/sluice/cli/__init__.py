"""The ``sluice`` command line: one module per command (group).

Exit codes: 0 success, 1 an error (one line on standard error, never a traceback),
2 a usage error.
"""

from __future__ import annotations

import click

from sluice import __version__
from sluice.cli._base import SluiceGroup
from sluice.cli.catalog import catalog
from sluice.cli.migrate import migrate
from sluice.cli.serve import serve
from sluice.cli.tokens import tokens
from sluice.cli.users import users
from sluice.cli.worker import worker

__all__ = ["cli", "main"]


@click.group(cls=SluiceGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sluice")
def cli() -> None:
    """Sluice: a self-hosted server-side connector hub for customer event data."""


for command in (serve, worker, migrate, tokens, users, catalog):
    cli.add_command(command)


def main() -> None:
    cli(prog_name="sluice")
