"""``smsrecon events``: append, tail and count the raw log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from pipeline.cli import event_archive
from pipeline.cli.columns import Columns, json_text, utc_text
from pipeline.cli.context import EXIT_USAGE, app_context, fail, progress
from pipeline.eventlog import NewEvent, append, read
from pipeline.eventlog.files import EventFileError, parse_event_lines
from pipeline.eventlog.model import EVENT_TYPES, UnreadableEvent
from pipeline.eventlog.stats import log_stats

CHUNK = 1000


@click.group()
def events() -> None:
    """The append-only event log."""


@events.command("append")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def append_command(file: Path) -> None:
    """Append events from a JSON-lines FILE (see docs/events.md); duplicates are skipped.

    The whole file is checked first: if any line is invalid, each bad line is reported and
    nothing is appended (exit 2), so a file is never half-imported by mistake.
    """
    try:
        parsed = parse_event_lines(file.read_text(encoding="utf-8").splitlines())
    except EventFileError as exc:
        for problem in exc.problems:
            click.echo(f"{file}:{problem}", err=True)
        fail(f"{len(exc.problems)} invalid line(s) in {file}; nothing appended", EXIT_USAGE)
    from pipeline.cli.prices_commands import record_or_fail

    app = app_context()
    database = app.database()
    record_or_fail(database, app.settings)
    appended = duplicates = 0
    last = None
    with progress(len(parsed), f"appending {file.name}") as bar:
        for start in range(0, len(parsed), CHUNK):
            chunk: list[NewEvent] = parsed[start : start + CHUNK]
            result = append(database, chunk)
            appended += len(result.appended)
            duplicates += len(result.duplicates)
            if result.positions:
                last = max(result.positions)
            bar.advance(len(chunk))
    tail = f", last position {last}" if last is not None else ""
    click.echo(f"appended {appended}, duplicates {duplicates}{tail}")


@events.command()
@click.option(
    "--after",
    type=int,
    default=None,
    help="Show events after this position (default: only the last LIMIT events).",
)
@click.option(
    "--limit",
    type=click.IntRange(1),
    default=20,
    show_default=True,
    help="Events per page; without --after, how many of the last events are shown.",
)
@click.option("--follow", is_flag=True, help="Keep printing new events as they arrive.")
@click.option("--format", "fmt", type=click.Choice(["table", "jsonl"]), default="table")
@click.option("--poll", type=float, default=1.0, show_default=True, help="Seconds between polls.")
def tail(after: int | None, limit: int, follow: bool, fmt: str, poll: float) -> None:
    """Print events in position order.

    Without --after only the last LIMIT events (20) are shown; page through the whole log
    with --after 0 and then the last position printed. The table's times are UTC.
    """
    database = app_context().database()
    if after is None:
        last = log_stats(database).last_position
        after = max(0, last - limit)
    columns = Columns(EVENT_HEADERS, EVENT_WIDTHS, (True, False, False, False, False))
    header_shown = False
    while True:
        batch = read(database, after=after, limit=limit if not follow else 1000)
        if fmt == "jsonl":
            for event in batch.events:
                click.echo(json.dumps(event.as_json(), ensure_ascii=False, sort_keys=True))
        elif batch.events:
            rows = [_event_row(event) for event in batch.events]
            if not header_shown:
                columns.fit(rows)  # a streamed listing keeps its first widths
                click.echo(columns.header())
                header_shown = True
            for row in rows:
                click.echo(columns.line(row))
        after = batch.next_checkpoint
        if not follow:
            return
        if not batch.events:
            time.sleep(poll)


EVENT_HEADERS = ("position", "occurred_at (UTC)", "type", "message_id", "carrier/id", "payload")
EVENT_WIDTHS = (10, 20, max(len(t) for t in EVENT_TYPES), 12, 16)


def _event_row(event) -> tuple[str, ...]:  # type: ignore[no-untyped-def]
    carrier = f"{event.carrier or '-'}/{event.carrier_message_id or '-'}"
    payload = json_text(event.payload)
    if isinstance(event, UnreadableEvent):
        # Shown as stored: the projector skips it (an unreadable_event mismatch says why).
        payload = f"{payload}  [unreadable: {event.error}]"
    return (
        str(event.position),
        utc_text(event.occurred_at),
        event.type or "-",
        event.message_id or "-",
        carrier,
        payload,
    )


@events.command()
def stats() -> None:
    """Count events by type; print the last position and the database size."""
    result = log_stats(app_context().database())
    for event_type, count in sorted(result.by_type.items()):
        click.echo(f"{event_type:<28}{count:>12}")
    click.echo(f"{'total':<28}{result.total:>12}")
    click.echo(f"last position: {result.last_position}")
    click.echo(f"database size: {result.database_bytes / 1_048_576:.1f} MiB")


event_archive.register(events)
