"""Run the demo: a fresh SQLite database under ./var, the bundled traffic, and the results."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.eventlog.files import parse_event_lines
from pipeline.eventlog.stats import log_stats

DATA = Path(__file__).resolve().parent / "data"
DEFAULT_DATABASE = Path("var/demo.db")


def fresh_database(path: Path) -> Database:
    """The demo always starts from an empty database of its own, never the configured one."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    database = Database.from_url(f"sqlite:///{path}")
    schema.upgrade(database.engine)
    return database


def run_demo(path: Path = DEFAULT_DATABASE) -> None:
    database = fresh_database(path)
    try:
        click.echo(f"demo database: {path} (schema {schema.current_revision(database.engine)})")
        lines = (DATA / "sample_events.jsonl").read_text(encoding="utf-8").splitlines()
        result = append(database, parse_event_lines(lines))
        click.echo(
            f"appended {len(result.appended)} sample events, duplicates {len(result.duplicates)}"
        )
        stats = log_stats(database)
        click.echo("\nevents by type")
        for event_type, count in sorted(stats.by_type.items()):
            click.echo(f"  {event_type:<24}{count:>6}")
        click.echo(f"  {'total':<24}{stats.total:>6}   last position {stats.last_position}")
    finally:
        database.dispose()
