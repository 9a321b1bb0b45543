"""``smsrecon db``: create and inspect the schema, grant roles, take backups."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.context import EXIT_FAILURE, EXIT_USAGE, app_context, fail
from pipeline.db import schema
from pipeline.db.engine import Database


@click.group()
def db() -> None:
    """Database schema (alembic migrations)."""


@db.command()
def upgrade() -> None:
    """Create or upgrade the schema to this version's head revision."""
    database = app_context().database(check_schema=False)
    before = schema.current_revision(database.engine)
    schema.upgrade(database.engine)
    after = schema.current_revision(database.engine)
    if before == after:
        click.echo(f"schema already at {after}")
    else:
        click.echo(f"schema upgraded from {before or 'empty'} to {after}")
    _create_partitions_ahead(database)


def _create_partitions_ahead(database: Database) -> None:
    """The months ahead of a partitioned log (nothing elsewhere), as ``run`` makes them."""
    ahead = app_context().settings.growth.partitions_ahead
    with database.write() as conn:
        made = database.backend.create_event_partitions(conn, ahead)
    if made:
        click.echo(f"created event partitions {', '.join(made)}")


@db.command()
def current() -> None:
    """Print the schema revision and whether it is the head this code needs."""
    database = app_context().database(check_schema=False)
    now = schema.current_revision(database.engine)
    head = schema.head_revision()
    state = "up to date" if now == head else f"behind (head is {head}): run `smsrecon db upgrade`"
    click.echo(f"{now or 'empty'} ({state})")


@db.command()
@click.argument("role")
@click.option(
    "--reporting",
    is_flag=True,
    help="Make ROLE read-only for BI tools: SELECT on the v_* views, nothing else.",
)
def grant(role: str, reporting: bool) -> None:
    """Grant ROLE exactly what the app needs at run time (PostgreSQL; run as the owner).

    On events only INSERT and SELECT: the role cannot alter, disable the triggers of,
    drop, truncate, update or delete the log. Migrations and replay stay with the owner.
    With --reporting, ROLE may only SELECT the reporting views (docs/reporting.md).
    """
    from sqlalchemy.exc import DBAPIError

    from pipeline.cli.context import database_error_text
    from pipeline.db.roles import RoleError, grant_reporting, grant_runtime

    database = app_context().database()
    try:
        with database.write() as conn:
            granted = (grant_reporting if reporting else grant_runtime)(conn, role)
    except RoleError as exc:
        fail(str(exc), EXIT_USAGE)
    except DBAPIError as exc:
        fail(f"cannot grant (run as the schema's owner): {database_error_text(exc)}", EXIT_USAGE)
    for on, privileges in granted.items:
        click.echo(f"granted {privileges} on {on}")
    if reporting:
        click.echo(f"{role} may now read the reporting views and nothing else")
    else:
        click.echo(f"{role} may now run the app; keep migrations and replay with the owner")


@db.command()
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite FILE if it exists.")
def backup(file: Path, force: bool) -> None:
    """Copy the database to FILE while the service keeps running (README: Backups).

    SQLite: a copy of the database file by SQLite's online backup API. PostgreSQL:
    pg_dump --format=custom. Written to FILE.partial and renamed when complete.
    """
    from pipeline.db.backup import BackupError, BackupExists, BackupToolMissing, back_up

    database = app_context().database()
    try:
        result = back_up(database, file, force=force)
    except (BackupExists, BackupToolMissing) as exc:
        fail(str(exc), EXIT_USAGE)
    except (BackupError, OSError) as exc:
        fail(str(exc), EXIT_FAILURE)
    click.echo(result.line())
    click.echo(result.restore)


@db.command("partition-events")
@click.option("--yes", is_flag=True, help="Convert without asking (the log is locked meanwhile).")
def partition_events(yes: bool) -> None:
    """Convert the log to monthly partitions (PostgreSQL; run as the owner).

    Rewrites events under an exclusive lock: appends and reads wait until it commits, and
    the table needs its size again in free space meanwhile (docs/operations.md gives the
    time per million events). All of it, or nothing on any error.
    """
    from pipeline.cli.context import progress
    from pipeline.db.partitions import PartitionError

    app = app_context()
    database = app.database()
    if not yes:
        click.confirm(
            "Rewrite events as monthly partitions now? Appends and reads wait until it is done",
            abort=True,
        )
    ahead = app.settings.growth.partitions_ahead
    with database.read() as conn:
        total = int(conn.exec_driver_sql("SELECT count(*) FROM events").scalar() or 0)
    try:
        with progress(total, "partitioning events") as bar, database.write() as conn:
            result = database.backend.partition_events(conn, ahead, on_progress=bar.advance)
    except PartitionError as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(
        f"events is partitioned by month: {result.rows} events copied, "
        f"{len(result.partitions)} partitions ({result.partitions[0]} … {result.partitions[-1]})"
    )


@db.command()
def partitions() -> None:
    """List the log's monthly partitions, creating the months ahead that are missing."""
    app = app_context()
    database = app.database()
    _create_partitions_ahead(database)
    with database.read() as conn:
        partitioned = database.backend.events_partitioned(conn)
        found = database.backend.event_partitions(conn)
    if not partitioned:
        click.echo(
            "events is one table (on PostgreSQL, `smsrecon db partition-events` converts it)"
        )
        return
    for part in found:
        size = part.bytes / 1_048_576
        click.echo(f"{part.month or 'DEFAULT':<8} {part.name:<16} {size:>10.1f} MiB")
