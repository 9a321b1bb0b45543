"""``smsrecon demo``."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.demo.run_demo import DEFAULT_DATABASE, run_demo


@click.command()
@click.option(
    "--database",
    "path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=DEFAULT_DATABASE,
    show_default=True,
    help="SQLite file the demo creates afresh (the configured database is never touched).",
)
@click.option(
    "--url",
    default=None,
    help="Run on this (empty) database instead, e.g. PostgreSQL; migrated first.",
)
def demo(path: Path, url: str | None) -> None:
    """The whole pipeline on bundled sample traffic: ingest, project, dispatch, results."""
    run_demo(path, url)
