"""``smsrecon dashboard``: the read-only finance dashboard on its own (needs only the
database). See docs/dashboard.md."""

from __future__ import annotations

import click

from pipeline.cli.context import app_context, friendly_errors, serve_in_foreground


@click.command()
@click.option("--host", default=None, help="Overrides dashboard.host.")
@click.option(
    "--port", type=click.IntRange(0, 65535), default=None, help="Overrides dashboard.port."
)
@friendly_errors
def dashboard(host: str | None, port: int | None) -> None:
    """Serve the finance dashboard at /dashboard/ until SIGTERM or SIGINT.

    Read-only. Without dashboard.auth it listens only on a loopback address (exit 2
    otherwise). A database not migrated yet is shown as such on every page, not refused.
    """
    from pipeline.dashboard.app import PREFIX, standalone_app
    from pipeline.dashboard.auth import check_exposure

    ctx = app_context()
    settings = ctx.settings
    host = host or settings.dashboard.host
    check_exposure(settings, host)
    app = standalone_app(settings, ctx.database(check_schema=False))

    def ready(url: str) -> None:
        click.echo(f"smsrecon dashboard on {url}{PREFIX}/ (Ctrl-C stops it)", err=False)

    serve_in_foreground(
        app, host=host, port=settings.dashboard.port if port is None else port, on_ready=ready
    )
