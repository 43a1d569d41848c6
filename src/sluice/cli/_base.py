"""What every command shares: the ``--database`` option, opening it, and error handling.

Users never see a traceback: an error the user can fix is one line on standard error and
exit code 1; Click's own usage errors keep their exit code 2.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from sluice.auth.principals import Principal
from sluice.errors import ApiError, ConfigurationError, SluiceError
from sluice.settings import DEFAULT_DATABASE_URL
from sluice.storage import migrate
from sluice.storage.db import Database

F = TypeVar("F", bound=Callable[..., Any])

# Who the audit log names for changes made from the command line.
CLI_ACTOR = Principal("cli", "cli", "cli", "admin", None)


def database_option(func: F) -> F:
    return click.option(
        "--database",
        "database",
        envvar="SLUICE_DATABASE_URL",
        default=DEFAULT_DATABASE_URL,
        show_default=True,
        metavar="URL",
        help="SQLAlchemy URL: sqlite:///sluice.db or postgresql://user:pass@host/db "
        "(env SLUICE_DATABASE_URL).",
    )(func)


def open_database(url: str) -> Database:
    """The database, migrated in place when it is SQLite; PostgreSQL must be current."""
    db = Database(url)
    db.check()
    if not migrate.is_current(db):
        if not db.is_sqlite:
            db.dispose()
            raise ConfigurationError("the database schema is behind: run `sluice migrate` first")
        migrate.upgrade(db)
    return db


def one_line(text: str, limit: int = 500) -> str:
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("  ".join(cells).rstrip())


def setup_logging(verbose: bool = False) -> None:
    logging.basicConfig(
        level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", force=True
    )
    logging.getLogger("sluice").setLevel(logging.DEBUG if verbose else logging.INFO)
    logging.getLogger("uvicorn").setLevel(logging.INFO)


class SluiceGroup(click.Group):
    """Turns every error into one line and exit code 1 (Click's usage errors stay 2)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # The reader went away (``sluice catalog | head``): not an error of ours.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(0) from None
        except ApiError as exc:
            raise click.ClickException(one_line(exc.message)) from exc
        except (SluiceError, ConfigurationError) as exc:
            raise click.ClickException(one_line(str(exc))) from exc
        except DBAPIError as exc:
            raise click.ClickException(one_line(f"database error: {exc.orig}")) from exc
        except SQLAlchemyError as exc:
            raise click.ClickException(one_line(f"database error: {exc}")) from exc
        except Exception as exc:
            raise click.ClickException(
                one_line(f"unexpected error: {type(exc).__name__}: {exc}")
            ) from exc
