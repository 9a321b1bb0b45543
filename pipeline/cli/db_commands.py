"""``smsrecon db``: create and inspect the schema, grant roles, take backups."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.context import EXIT_FAILURE, EXIT_USAGE, app_context, fail
from pipeline.db import schema


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
