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
def demo(path: Path) -> None:
    """Run the pipeline on bundled sample traffic in a fresh SQLite database."""
    run_demo(path)
