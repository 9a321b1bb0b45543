"""``smsrecon serve``, ``smsrecon ingest`` and ``smsrecon quarantine`` (docs/ingest.md)."""

from __future__ import annotations

import base64
import json
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import click
from sqlalchemy.exc import SQLAlchemyError

from pipeline.cli.context import (
    EXIT_FAILURE,
    EXIT_QUARANTINED,
    EXIT_USAGE,
    app_context,
    fail,
    friendly_errors,
    progress,
    serve_in_foreground,
)
from pipeline.config import Settings
from pipeline.ingest.adapters.registry import FORMATS
from pipeline.ingest.requests import KINDS

if TYPE_CHECKING:
    from pipeline.ingest.importer import ImportSummary

log = logging.getLogger("pipeline.ingest")


@click.command()
@click.option("--host", default=None, help="Address to listen on (default: ingest.host).")
@click.option("--port", type=click.IntRange(0, 65535), default=None, help="0 picks a free port.")
@friendly_errors
def serve(host: str | None, port: int | None) -> None:
    """Run the ingest HTTP server until SIGTERM or SIGINT (in-flight requests finish)."""
    from pipeline.ingest.exposure import exposure_warning
    from pipeline.ingest.server import build_ingest_app

    ctx = app_context()
    # Reading the settings configures logging (pipeline.logs: level, text or JSON, secrets
    # masked) for the whole process, the server's loggers included.
    settings = ctx.settings
    host = host or settings.ingest.host
    # Before the database or the socket: an exposed route without auth never starts.
    warning = exposure_warning(settings, host)
    if warning:
        log.warning("%s", warning)
    database = ctx.database()
    app = build_ingest_app(settings, database)
    port = settings.ingest.port if port is None else port
    # shutdown_timeout: in-flight handlers get this long to finish; their events are
    # committed by the writer, which the app's cleanup stops last.
    serve_in_foreground(
        app,
        host=host,
        port=port,
        on_ready=lambda url: click.echo(f"listening on {url}"),
        shutdown_timeout=30,
    )
    click.echo("stopped")


@click.command()
@click.argument(
    "files", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path)
)
@click.option(
    "--format",
    "fmt",
    required=True,
    type=click.Choice([*KINDS, *FORMATS]),
    help="messages | submissions | refusals, or a carrier format.",
)
@click.option("--carrier", default=None, help="Configured carrier (for a carrier format).")
@friendly_errors
def ingest(files: tuple[Path, ...], fmt: str, carrier: str | None) -> None:
    """Import FILE... (captured requests, JSON, JSON lines or CSV) as the server would.

    Bad records are quarantined and the rest imported; exit 3 when anything was quarantined.
    """
    from pipeline.ingest.faults import failure_text
    from pipeline.ingest.files import FileLayoutError, read_records
    from pipeline.ingest.importer import ImportSummary, ImportUnavailable, import_records

    ctx = app_context()
    settings = ctx.settings
    target = _target(settings, fmt, carrier)
    batches = []
    for file in files:
        try:
            text = file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            fail(f"{file}: cannot read: {exc}", EXIT_USAGE)
        try:
            batches.append((file, read_records(text, fmt, target)))
        except FileLayoutError as exc:
            fail(f"{file}: {exc}", EXIT_USAGE)
    from pipeline.cli.prices_commands import record_or_fail

    database = ctx.database()
    record_or_fail(database, settings)
    summary = ImportSummary()
    total = sum(len(records) for _, records in batches)
    try:
        with progress(total, f"ingesting {fmt}") as bar:
            for file, records in batches:
                import_records(
                    database,
                    settings,
                    records,
                    target=target,
                    source=f"file:{file.name}"[:128],
                    summary=summary,
                    advance=bar.advance,
                )
    except (ImportUnavailable, SQLAlchemyError) as exc:
        # One line, never the driver's full message: it would quote the SQL parameters,
        # which hold the rows' phone numbers and texts.
        reason = str(exc) if isinstance(exc, ImportUnavailable) else failure_text(exc)
        click.echo(_summary_line(summary))
        fail(f"the database failed, the rest was not stored (run again): {reason}", EXIT_FAILURE)
    click.echo(_summary_line(summary))
    if summary.quarantined or summary.not_kept:
        raise SystemExit(EXIT_QUARANTINED)


def _summary_line(summary: ImportSummary) -> str:
    not_kept = f", refused but not kept {summary.not_kept}" if summary.not_kept else ""
    return (
        f"read {summary.read}, appended {summary.appended}, duplicates {summary.duplicates}, "
        f"quarantined {summary.quarantined}{not_kept}"
    )


def _target(settings: Settings, fmt: str, carrier: str | None):  # type: ignore[no-untyped-def]
    from pipeline.ingest.routing import Target

    if fmt in KINDS:
        if carrier is not None:
            fail(f"--carrier does not apply to --format {fmt}", EXIT_USAGE)
        return Target(fmt)
    if carrier is None:
        matching = sorted(n for n, c in settings.carriers.items() if c.format == fmt)
        if len(matching) != 1:
            found = ", ".join(matching) or "none"
            fail(f"--carrier is required: carriers with format {fmt}: {found}", EXIT_USAGE)
        carrier = matching[0]
    configured = settings.carriers.get(carrier)
    if configured is None:
        known = ", ".join(sorted(settings.carriers)) or "none"
        fail(f"--carrier {carrier}: not configured in carriers (configured: {known})", EXIT_USAGE)
    if configured.format != fmt:
        fail(
            f"--carrier {carrier} has format {configured.format}, not {fmt}: "
            "its reports are parsed in its configured format",
            EXIT_USAGE,
        )
    return Target("dlr", carrier)


@click.group()
def quarantine() -> None:
    """Requests refused as bad input: list, show, replay."""


@quarantine.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include resolved entries.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True)
def list_command(show_all: bool, limit: int) -> None:
    """List open entries (oldest first)."""
    from pipeline.ingest import quarantine as store

    database = app_context().database()
    rows = store.entries(database, status=None if show_all else "open", limit=limit)
    for entry in rows:
        received = entry.received_at.isoformat(timespec="seconds").replace("+00:00", "Z")
        where = entry.carrier or entry.format or "-"
        click.echo(
            f"{entry.id:>8}  {received}  {entry.status:<8}  {where:<12}  {entry.source:<24}  "
            f"{entry.error}"
        )
    counts = store.counts(database)
    click.echo(f"open {counts.get('open', 0)}, resolved {counts.get('resolved', 0)}")


@quarantine.command()
@click.argument("entry_id", type=int)
def show(entry_id: int) -> None:
    """Print one entry: the request as received (without credentials) and why it was refused."""
    from pipeline.ingest import quarantine as store

    entry = store.get(app_context().database(), entry_id)
    if entry is None:
        fail(f"no quarantine entry {entry_id}", EXIT_FAILURE)
    request = entry.request
    body = request.body.decode("utf-8") if entry.body_encoding == "utf-8" else None
    document = {
        "id": entry.id,
        "status": entry.status,
        "received_at": entry.received_at.isoformat().replace("+00:00", "Z"),
        "source": entry.source,
        "carrier": entry.carrier,
        "format": entry.format,
        "error": entry.error,
        "detail": entry.detail,
        "request": {
            "method": request.method,
            "path": request.path,
            "query": [list(pair) for pair in request.query],
            "headers": request.headers,
            "body": body if body is not None else base64.b64encode(request.body).decode(),
            "body_encoding": entry.body_encoding,
        },
        "resolved_at": entry.resolved_at.isoformat().replace("+00:00", "Z")
        if entry.resolved_at
        else None,
        "resolved_positions": entry.resolved_positions,
        "note": entry.note,
    }
    # A lone surrogate (from a header that was not UTF-8) cannot be printed as UTF-8: it is
    # written as its JSON escape (\udcff), so the output is still JSON that reads back the same.
    text = json.dumps(document, indent=2, ensure_ascii=False)
    click.echo(text.encode("utf-8", "backslashreplace").decode("utf-8"))


@quarantine.command()
@click.argument("entry_id", type=int, required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every open entry.")
@friendly_errors
def replay(entry_id: int | None, replay_all: bool) -> None:
    """Parse entries again with the current code and config; a success resolves them.

    Exit 0 when every replayed entry resolved, 3 when some are still quarantined.
    """
    from pipeline.ingest import quarantine as store
    from pipeline.ingest.replay import replay as replay_entry

    if (entry_id is None) == (not replay_all):
        fail("give an entry ID or --all (not both)", EXIT_USAGE)
    from pipeline.cli.prices_commands import record_or_fail

    ctx = app_context()
    database = ctx.database()
    record_or_fail(database, ctx.settings)
    if replay_all:
        targets = store.entries(database, status="open")
    else:
        entry = store.get(database, entry_id)  # type: ignore[arg-type]
        if entry is None:
            fail(f"no quarantine entry {entry_id}", EXIT_FAILURE)
        targets = [entry]
    resolved = still_open = appended = duplicates = 0
    with progress(len(targets), "replaying", enabled=len(targets) > 1) as bar:
        for entry in targets:
            if entry.status != "open":
                click.echo(f"#{entry.id}: already {entry.status} ({entry.note or 'no note'})")
                bar.advance()
                continue
            result = replay_entry(database, ctx.settings, entry)
            if result.resolved:
                resolved += 1
                appended += result.appended
                duplicates += result.duplicates
            else:
                still_open += 1
                click.echo(f"#{entry.id}: still quarantined: {result.error}", err=True)
            bar.advance()
    click.echo(
        f"replayed {len(targets)}, resolved {resolved}, still open {still_open}, "
        f"appended {appended}, duplicates {duplicates}"
    )
    if still_open:
        raise SystemExit(EXIT_QUARANTINED)
