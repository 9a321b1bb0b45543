"""``smsrecon demo``."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.context import EXIT_USAGE, fail
from pipeline.demo.run_demo import DASHBOARD_PORT, DEFAULT_DATABASE, DemoRefused, run_demo


@click.command()
@click.option(
    "--database",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DATABASE,
    show_default=True,
    help="SQLite file the demo creates afresh (the configured database is never touched); "
    "an existing file is replaced only if an earlier demo made it.",
)
@click.option(
    "--url",
    default=None,
    help="Run on this (empty, or an earlier demo's) database instead, e.g. PostgreSQL; "
    "migrated first.",
)
@click.option(
    "--serve",
    is_flag=True,
    help="Then serve the demo database's dashboard on 127.0.0.1 until Ctrl-C.",
)
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=DASHBOARD_PORT,
    show_default=True,
    help="The dashboard's port with --serve.",
)
def demo(path: Path, url: str | None, serve: bool, port: int) -> None:
    """The whole pipeline on bundled sample traffic: ingest, project, dispatch, results.

    Never deletes or overwrites what it did not create: an existing --database file, its
    .yaml, or a --url database holding data are refused (exit 2) unless a demo made them.
    """
    try:
        run_demo(path, url)
    except DemoRefused as exc:
        fail(str(exc), EXIT_USAGE)
    if serve:
        _serve_dashboard(path.with_suffix(".yaml"), port)


def _serve_dashboard(config_path: Path, port: int) -> None:
    """The dashboard over the demo's database, with the settings the demo wrote."""
    from pipeline.cli.context import serve_in_foreground
    from pipeline.config import load_settings
    from pipeline.dashboard.app import PREFIX, standalone_app
    from pipeline.db.engine import Database

    settings = load_settings(config_path)
    database = Database.from_url(settings.database.url)

    def ready(base: str) -> None:
        click.echo(f"\ndemo dashboard on {base}{PREFIX}/ (Ctrl-C stops it)")

    try:
        serve_in_foreground(
            standalone_app(settings, database), host="127.0.0.1", port=port, on_ready=ready
        )
    finally:
        database.dispose()
