"""``smsrecon demo``."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.context import EXIT_USAGE, fail
from pipeline.demo.run_demo import DEFAULT_DATABASE, DemoRefused, run_demo


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
def demo(path: Path, url: str | None) -> None:
    """The whole pipeline on bundled sample traffic: ingest, project, dispatch, results.

    Never deletes or overwrites what it did not create: an existing --database file, its
    .yaml, or a --url database holding data are refused (exit 2) unless a demo made them.
    """
    try:
        run_demo(path, url)
    except DemoRefused as exc:
        fail(str(exc), EXIT_USAGE)
