"""``smsrecon events archive`` and ``events detach``: closed months out to Parquet, and
(PostgreSQL, partitioned log) out of the live table once their archive is recorded."""

from __future__ import annotations

from pathlib import Path

import click

from pipeline.cli.context import EXIT_FAILURE, EXIT_USAGE, app_context, fail, progress
from pipeline.db.engine import Database
from pipeline.eventlog.archive import (
    ArchiveError,
    find_archive,
    month_in_log,
    month_text,
    parse_month,
    plan_archive,
    write_archive,
)


def _month(_ctx: click.Context, _param: click.Parameter, value: str | None) -> object:
    if value is None:
        return None
    try:
        return parse_month(value)
    except ArchiveError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command()
@click.option(
    "--before", required=True, callback=_month, help="First month NOT archived (YYYY-MM)."
)
@click.option(
    "--from",
    "start",
    callback=_month,
    default=None,
    help="First month archived (default: where the last archive stopped, else the oldest).",
)
@click.option(
    "--to",
    "target",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The Parquet file to write.",
)
@click.option("--force", is_flag=True, help="Overwrite the file if it exists.")
def archive(before: object, start: object, target: Path, force: bool) -> None:
    """Write the closed months' events (months of recorded_at) to a Parquet file.

    Every column, exactly; the file's SHA-256 and what it holds are recorded in the log as
    an events.archived event. The events stay in the log: on a partitioned PostgreSQL log,
    `events detach` then takes a month out of the live table (docs/operations.md).
    """
    database = app_context().database()
    try:
        plan = plan_archive(database, before, start)  # type: ignore[arg-type]
        if target.exists() and not force:
            fail(f"{target} exists; pass --force to overwrite it", EXIT_USAGE)
        with progress(plan.count, f"archiving to {target.name}") as bar:
            result = write_archive(database, target, plan, force=force, on_rows=bar.advance)
    except ArchiveError as exc:
        fail(str(exc), EXIT_USAGE)
    except OSError as exc:
        fail(f"cannot write {target}: {exc.strerror or exc}", EXIT_FAILURE)
    click.echo(result.line())
    for month in result.months:
        click.echo(
            f"  {month.month}: {month.count} events, positions "
            f"{month.first_position}-{month.last_position}"
        )
    if result.event_position is None:
        click.echo("the log had recorded this very archive already")
    else:
        click.echo(f"recorded as events.archived at position {result.event_position}")


@click.command()
@click.argument("month", callback=_month)
@click.option(
    "--archive",
    "archive_file",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The archive file holding the month (its hash must be the one recorded).",
)
def detach(month: object, archive_file: Path) -> None:
    """Detach MONTH's partition from the log (PostgreSQL, partitioned; run as the owner).

    Refused unless an events.archived event records ARCHIVE with this file's hash and the
    month with as many events and the same positions as the partition holds, and the
    projector has folded the whole month. The partition stays as a table of its own.
    """
    from pipeline.db.partitions import PartitionError
    from pipeline.projector.runner import checkpoint_position

    database = app_context().database()
    with database.read() as conn:
        partitioned = database.backend.events_partitioned(conn)
    if not partitioned:
        fail(
            "events is not partitioned, so there is nothing to detach: an archive is an export "
            "only (SQLite has no partitions; on PostgreSQL `smsrecon db partition-events` "
            "converts the log)"
        )
    try:
        with database.write() as conn:
            record, archived = find_archive(conn, archive_file, month)  # type: ignore[arg-type]

            def check() -> None:
                live = month_in_log(conn, month)  # type: ignore[arg-type]
                if live != archived:
                    raise ArchiveError(
                        f"the log holds {live.count} events of {live.month} (positions "
                        f"{live.first_position}-{live.last_position}), the archive "
                        f"{archived.count} ({archived.first_position}-"
                        f"{archived.last_position}): archive the month again (--from, "
                        "--force) before detaching it"
                    )
                if checkpoint_position(database) < archived.last_position:
                    raise ArchiveError(
                        f"the projector has not folded {live.month} yet (it is before "
                        f"position {archived.last_position}): run `smsrecon project` first"
                    )

            name = database.backend.detach_event_partition(conn, month, check)  # type: ignore[arg-type]
    except (ArchiveError, PartitionError) as exc:
        fail(str(exc), EXIT_USAGE)
    click.echo(
        f"detached {name} ({archived.count} events of {month_text(month)}, archived in "  # type: ignore[arg-type]
        f"{record.path}); it is a table of its own now: back it up (pg_dump -t {name}), then "
        f"DROP TABLE {name} frees the space"
    )


def register(group: click.Group) -> None:
    """Add these commands to ``smsrecon events``."""
    group.add_command(archive)
    group.add_command(detach)


def refuse_missing_months(database: Database) -> None:
    """Exit 2 naming the archive files to restore when archived months have left the log
    (a detached partition): a fold from scratch without them would be wrong, not short."""
    from pipeline.eventlog.archive import missing_months

    missing = missing_months(database)
    if not missing:
        return
    for gone in missing:
        click.echo(f"smsrecon: archived and no longer in the log: {gone.line()}", err=True)
    fail(
        f"{len(missing)} archived month(s) are not in the log, so a replay would fold without "
        "them: attach their partitions again (restore the detached tables, then ALTER TABLE "
        "events ATTACH PARTITION ...; docs/operations.md) and run again",
        EXIT_USAGE,
    )
