"""``sluice serve``: collect API, management API, web UI and the workers in one process."""

from __future__ import annotations

import importlib.util
from types import FrameType

import click
import uvicorn

from sluice.cli._base import database_option, open_database, setup_logging
from sluice.services import Services
from sluice.settings import Settings

# How long uvicorn lets open requests finish after SIGTERM/SIGINT before closing them.
GRACEFUL_SHUTDOWN_SECONDS = 15


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="TCP port."
)
@database_option
@click.option("--demo", is_flag=True, help="Seed a demo profile and print how to log in.")
@click.option(
    "--no-workers",
    is_flag=True,
    help="Accept and store events, but leave routing and delivery to `sluice worker`.",
)
def serve(host: str, port: int, database: str, demo: bool, no_workers: bool) -> None:
    """Run Sluice: HTTP on HOST:PORT, plus routing and delivery unless --no-workers."""
    from sluice.app import create_app

    setup_logging()
    settings = Settings.from_env(
        database_url=database,
        run_workers=not no_workers,
        demo=demo,
        # The demo vendor endpoint lives on this machine.
        allow_private_destinations=True if demo else None,
    )
    # Migrate SQLite, or refuse a PostgreSQL schema that is behind, before anything else
    # (such as creating the key file) happens.
    open_database(settings.database_url).dispose()
    services = Services.open(settings)
    try:
        app = create_app(services=services)
        if demo:
            from sluice.demo import seed_demo

            click.echo(seed_demo(services, f"http://127.0.0.1:{port}"))
        shown_host = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::") else host
        click.echo(f"Sluice is starting on http://{shown_host}:{port}/")
        config = uvicorn.Config(
            app,
            host=host,
            port=port,
            loop="uvloop" if importlib.util.find_spec("uvloop") else "asyncio",
            http="httptools",
            lifespan="on",
            access_log=False,
            server_header=False,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            log_config=None,
        )
        _Server(config).run()
    finally:
        services.db.dispose()


class _Server(uvicorn.Server):
    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        super().handle_exit(sig, frame)
        # uvicorn re-raises the signal after its graceful shutdown, so the process would
        # die of SIGTERM; a stop that was asked for and went cleanly is a success (exit 0).
        captured = getattr(self, "_captured_signals", None)
        if isinstance(captured, list):
            captured.clear()
