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
@click.option(
    "--rebuild-rollup",
    is_flag=True,
    help="Rebuild the pages' daily rollup from message_state, then exit (after "
    "`replay --rebuild` under changed settings).",
)
@friendly_errors
def dashboard(host: str | None, port: int | None, rebuild_rollup: bool) -> None:
    """Serve the finance dashboard at /dashboard/ until SIGTERM or SIGINT.

    Read-only (it writes only its own rollup of the daily figures). Without dashboard.auth
    it listens only on a loopback address (exit 2 otherwise). A database not migrated yet
    is shown as such on every page, not refused.
    """
    from pipeline.dashboard.app import PREFIX, standalone_app
    from pipeline.dashboard.auth import check_exposure

    ctx = app_context()
    settings = ctx.settings
    if rebuild_rollup:
        from pipeline.dashboard import rollup

        click.echo("rebuilding the dashboard's daily rollup (one scan of message_state)…")
        with ctx.database().write() as conn:
            done = rollup.refresh(conn, full=True)
        click.echo(f"rollup rebuilt: {done.days} days, up to position {done.position}")
        return
    host = host or settings.dashboard.host
    check_exposure(settings, host)
    app = standalone_app(settings, ctx.database(check_schema=False))

    def ready(url: str) -> None:
        click.echo(f"smsrecon dashboard on {url}{PREFIX}/ (Ctrl-C stops it)", err=False)

    serve_in_foreground(
        app, host=host, port=settings.dashboard.port if port is None else port, on_ready=ready
    )
