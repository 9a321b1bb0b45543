"""``smsrecon db``: create and inspect the schema."""

from __future__ import annotations

import click

from pipeline.cli.context import app_context
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
