"""``smsrecon run``: ingest server, scheduled projector and dispatcher, metrics; one process."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import click
from aiohttp import web

from pipeline.cli.context import app_context, friendly_errors, serve_in_foreground

log = logging.getLogger("smsrecon.run")


@click.command()
@click.option("--host", default=None, help="Overrides ingest.host.")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="Overrides ingest.port.")
@friendly_errors
def run(host: str | None, port: int | None) -> None:
    """Serve ingest (with /metrics) and run the projector and dispatcher on their schedules.

    SIGTERM or SIGINT stops accepting requests, lets requests and jobs in progress finish,
    flushes the ingest write queue, and exits 0.
    """
    from jobs.scheduler import build_scheduler
    from pipeline.dispatch.routes import PartnerTokens
    from pipeline.health.routes import readiness_of
    from pipeline.ingest.exposure import exposure_warning
    from pipeline.ingest.server import build_ingest_app
    from pipeline.metrics.stages import stage_metrics_of

    ctx = app_context()
    settings = ctx.settings
    # Every partner's token before anything starts: a missing one is exit 2, not a
    # dispatcher that quietly retries each message until it expires.
    PartnerTokens(settings).require_all()
    host = host or settings.ingest.host
    # Before the database or the socket: an exposed route without auth never starts.
    warning = exposure_warning(settings, host)
    if warning:
        log.warning("%s", warning)
    database = ctx.database()
    app = build_ingest_app(settings, database)
    board = _mount_dashboard(app, settings, database, host)
    scheduler = build_scheduler(settings, database, stage_metrics_of(app))
    readiness = readiness_of(app)
    readiness.expect("scheduler")

    async def start_scheduler(_app: web.Application) -> None:
        scheduler.start()
        readiness.started("scheduler")

    async def stop_scheduler(_app: web.Application) -> None:
        # wait=True: a projection or dispatch in progress commits before we exit.
        await asyncio.to_thread(scheduler.shutdown, True)

    app.on_startup.append(start_scheduler)
    app.on_cleanup.insert(0, stop_scheduler)

    def ready(url: str) -> None:
        where = f"dashboard on {url}/dashboard/" if board is None else board
        click.echo(f"smsrecon running: ingest on {url}, {where}, jobs: project, dispatch")
        log.info("listening on %s", url)

    serve_in_foreground(
        app,
        host=host,
        port=settings.ingest.port if port is None else port,
        on_ready=ready,
    )
    click.echo("smsrecon stopped cleanly")


def _mount_dashboard(app: web.Application, settings: Any, database: Any, host: str) -> str | None:
    """Serve /dashboard beside ingest; None when mounted, else why not (for the banner).

    A dashboard without auth is never served on a non-loopback address (it shows every
    partner's money); ``run`` then serves ingest alone rather than refusing to start.
    """
    from pipeline.config import ConfigError
    from pipeline.dashboard.app import mount
    from pipeline.dashboard.auth import check_exposure

    if not settings.dashboard.with_run:
        return "dashboard off (dashboard.with_run: false)"
    try:
        check_exposure(settings, host)
    except ConfigError:
        return "dashboard off (no dashboard.auth on a non-loopback address)"
    mount(app, settings, database)
    return None
