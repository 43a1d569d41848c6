"""``sluice worker``: routing, AudienceStream and delivery, with no HTTP listener."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Any

import click

from sluice.cli._base import database_option, open_database, setup_logging
from sluice.services import Services
from sluice.settings import Settings


@click.command()
@database_option
def worker(database: str) -> None:
    """Process stored events until SIGTERM or SIGINT, then stop cleanly."""
    setup_logging()
    settings = Settings.from_env(database_url=database, run_workers=True)
    open_database(settings.database_url).dispose()  # migrate SQLite, or check PostgreSQL
    services = Services.open(settings)
    try:
        with asyncio.Runner(loop_factory=_loop_factory()) as runner:
            runner.run(_run(services))
    finally:
        services.db.dispose()
    click.echo("worker stopped")


async def _run(services: Services) -> None:
    from sluice.pipeline import Pipeline

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        try:
            loop.add_signal_handler(sig, stop.set)
        except NotImplementedError:  # Windows: Ctrl+C still ends it via KeyboardInterrupt
            pass
    pipeline = Pipeline(services)
    services.pipeline = pipeline
    await pipeline.start(run_workers=True)
    click.echo("worker running; stop it with SIGTERM or Ctrl+C")
    try:
        await stop.wait()
    finally:
        await pipeline.stop()
        services.pipeline = None


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:
        return None
    factory: Callable[[], Any] = uvloop.new_event_loop
    return factory
