"""``smsrecon reconcile``: carrier invoices into the log (docs/reconciliation.md)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

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
)


@click.group()
def reconcile() -> None:
    """Carrier invoices: import a file, close an invoice."""


@reconcile.command("import-invoice")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--carrier", required=True, help="Configured carrier the invoice is from.")
@click.option("--invoice-id", default=None, help="The invoice's id (default: the lines' own).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "jsonl", "xlsx"]),
    default=None,
    help="Default: from the name (.csv, .jsonl, .ndjson, each optionally .gz; .xlsx).",
)
@click.option("--period", default=None, help="FROM..TO, [from, to) in ISO dates or times.")
@click.option("--total", default=None, help="The invoice's stated total (a decimal).")
@click.option("--supersede", is_flag=True, help="Record a different file as a new version.")
@friendly_errors
def import_invoice_command(
    file: Path,
    carrier: str,
    invoice_id: str | None,
    fmt: str | None,
    period: str | None,
    total: str | None,
    supersede: bool,
) -> None:
    """Import FILE's lines as carrier.invoiced events and one carrier.invoice header.

    Bad lines are quarantined with their row and the rest imported; exit 3 when anything
    was quarantined, 2 when the whole file is refused.
    """
    from pipeline.reconcile.importer import import_invoice, plan_import
    from pipeline.reconcile.lines import MAX_INVOICE_ID
    from pipeline.reconcile.rows import InvoiceRefused, format_of

    ctx = app_context()
    settings = ctx.settings
    if carrier not in settings.carriers:
        known = ", ".join(sorted(settings.carriers)) or "none"
        fail(f"--carrier {carrier}: not configured in carriers (configured: {known})", EXIT_USAGE)
    if invoice_id is not None and not 1 <= len(invoice_id) <= MAX_INVOICE_ID:
        fail(f"--invoice-id: 1 to {MAX_INVOICE_ID} characters", EXIT_USAGE)
    bounds = None if period is None else _period(period)
    stated = None if total is None else _decimal(total)
    from pipeline.cli.prices_commands import record_or_fail

    database = ctx.database()
    record_or_fail(database, settings)
    try:
        plan = plan_import(
            database,
            settings,
            file,
            carrier=carrier,
            fmt=format_of(file, fmt),
            invoice_id=invoice_id,
            period=bounds,
            total=stated,
            supersede=supersede,
        )
        if plan.already is not None:
            click.echo(
                f"invoice {plan.invoice_id}: this file is already imported "
                f"(version {plan.already}); nothing appended"
            )
            return
        with progress(plan.survey.rows, f"importing invoice {plan.invoice_id}") as bar:
            summary = import_invoice(database, settings, plan, advance=bar.advance)
    except InvoiceRefused as exc:
        fail(str(exc), EXIT_USAGE)
    except UnicodeDecodeError as exc:
        fail(f"{file.name}: not UTF-8 text ({exc.reason})", EXIT_USAGE)
    except (OSError, EOFError) as exc:
        fail(f"{file.name}: cannot read: {exc}", EXIT_USAGE)
    except SQLAlchemyError as exc:
        from pipeline.ingest.faults import failure_text

        # One line, never the driver's message: it would quote the lines' values.
        reason = failure_text(exc)
        fail(f"the database failed, the rest was not stored (run again): {reason}", EXIT_FAILURE)
    not_kept = f", refused but not kept {summary.not_kept}" if summary.not_kept else ""
    click.echo(
        f"invoice {plan.invoice_id} version {plan.version}: read {summary.read}, "
        f"appended {summary.appended}, duplicates {summary.duplicates}, "
        f"quarantined {summary.quarantined}{not_kept}"
        + (
            f"; {summary.superseded} quarantined line(s) of older versions resolved"
            if summary.superseded
            else ""
        )
    )
    if summary.quarantined or summary.not_kept:
        raise SystemExit(EXIT_QUARANTINED)


@reconcile.command("close-invoice")
@click.argument("invoice_id")
@friendly_errors
def close_invoice_command(invoice_id: str) -> None:
    """Append carrier.invoice_closed: the invoice is complete."""
    from pipeline.cli.prices_commands import record_or_fail
    from pipeline.reconcile.importer import InvoiceRefused, close_invoice

    database = app_context().database()
    record_or_fail(database, app_context().settings)
    try:
        closed = close_invoice(database, invoice_id)
    except InvoiceRefused as exc:
        fail(str(exc), EXIT_USAGE)
    if closed:
        click.echo(f"invoice {invoice_id}: closed")
    else:
        click.echo(f"invoice {invoice_id}: already closed; nothing appended")


def _decimal(text: str) -> Decimal:
    try:
        amount = Decimal(text.strip())
    except InvalidOperation:
        fail(f"--total: not a decimal: {text[:20]!r}", EXIT_USAGE)
    if not amount.is_finite() or amount.adjusted() > 17:
        fail("--total: not a finite decimal of at most 18 digits", EXIT_USAGE)
    return amount


def _period(text: str) -> tuple[datetime, datetime]:
    start, sep, end = text.partition("..")
    if not sep:
        fail("--period: FROM..TO, e.g. 2026-01-01..2026-02-01", EXIT_USAGE)
    bounds = (_moment(start, "FROM"), _moment(end, "TO"))
    if bounds[0] >= bounds[1]:
        fail("--period: FROM must be before TO", EXIT_USAGE)
    return bounds


def _moment(text: str, name: str) -> datetime:
    try:
        if len(text.strip()) == 10:
            day = date.fromisoformat(text.strip())
            return datetime(day.year, day.month, day.day, tzinfo=UTC)
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        fail(f"--period: {name} is not an ISO date or time: {text[:40]!r}", EXIT_USAGE)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
