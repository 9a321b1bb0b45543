"""``smsrecon mismatches``: what needs a person's eye, and closing it with a note."""

from __future__ import annotations

import getpass
import json
from datetime import UTC, datetime
from typing import Any

import click

from pipeline.cli.columns import Columns, json_summary, json_text, utc_text
from pipeline.cli.context import EXIT_FAILURE, app_context, fail
from pipeline.mismatches import ACKNOWLEDGED, OPEN, RESOLVED, Mismatch, MismatchError

STATUSES = (OPEN, RESOLVED, ACKNOWLEDGED, "all")


@click.group()
def mismatches() -> None:
    """Mismatches: conflicting reports, refusals by Altegio, missing tariffs, …"""


#: Characters of a mismatch's JSON detail a table row shows (cut between whole members).
DETAIL_WIDTH = 80
MISMATCH_HEADERS = ("id", "status", "kind", "subject", "opened (UTC)", "at stake / invoice")


@mismatches.command("list")
@click.option("--status", type=click.Choice(STATUSES), default=OPEN, show_default=True)
@click.option("--kind", default=None, help="Only this kind (e.g. conflicting_final).")
@click.option("--message", "message_id", default=None, help="Only this message.")
@click.option("--limit", type=click.IntRange(1), default=None)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@click.option(
    "--wide",
    is_flag=True,
    help=f"Show each detail in full (the table cuts it to {DETAIL_WIDTH} characters, "
    "between whole members, ending with …).",
)
def list_command(
    status: str, kind: str | None, message_id: str | None, limit: int | None, fmt: str, wide: bool
) -> None:
    """List mismatches, oldest first (open ones by default)."""
    from pipeline.mismatches import list_mismatches

    database = app_context().database()
    with database.read() as conn:
        rows = list_mismatches(
            conn,
            status=None if status == "all" else status,
            kind=kind,
            message_id=message_id,
            limit=limit,
        )
    if fmt == "json":
        for m in rows:
            click.echo(json_line(m))
        return
    table = [_row(m, wide=wide) for m in rows]
    if table:
        columns = Columns((*MISMATCH_HEADERS, "detail"), (1,) * 6, (False,) * 6)
        columns.fit(table)
        click.echo(columns.header())
        for row in table:
            click.echo(columns.line(row))
    click.echo(f"{len(rows)} mismatch(es)")


def _row(m: Mismatch, *, wide: bool) -> tuple[str, ...]:
    money = "  ".join(
        f"{label} {value}"
        for label, value in (("at stake", at_stake_text(m)), ("invoice", m.invoice_id))
        if value
    )
    detail = json_text(m.detail) if wide else json_summary(m.detail, DETAIL_WIDTH)
    return (
        f"#{m.id}",
        m.status,
        m.kind,
        m.message_id or m.subject,
        utc_text(m.opened_at),
        money or "-",
        detail,
    )


@mismatches.command("show")
@click.argument("mismatch_id", type=int)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
def show(mismatch_id: int, fmt: str) -> None:
    """One mismatch in full: its lifecycle, the money at stake, its invoice and detail."""
    from pipeline.mismatches import get_mismatch

    database = app_context().database()
    try:
        with database.read() as conn:
            m = get_mismatch(conn, mismatch_id)
    except MismatchError as exc:
        fail(str(exc), EXIT_FAILURE)
    if fmt == "json":
        click.echo(json_line(m))
        return
    fields = {
        "mismatch": f"#{m.id}",
        "kind": m.kind,
        "origin": m.origin,
        "status": m.status,
        "subject": m.subject,
        "message": m.message_id,
        "at stake": at_stake_text(m),
        "invoice": m.invoice_id,
        "opened": m.opened_at.isoformat(),
        "resolved": m.resolved_at.isoformat() if m.resolved_at else None,
        "positions": (
            f"{m.first_position}..{m.last_position}" if m.first_position is not None else None
        ),
        "note": m.note,
    }
    for label, value in fields.items():
        if value is not None:
            click.echo(f"{label + ':':<11}{value}")
    detail = json.dumps(m.detail, ensure_ascii=False, sort_keys=True, indent=2, default=str)
    click.echo(f"detail:    {detail}")


def at_stake_text(m: Mismatch) -> str | None:
    """``4.50 RUB``; a partner's amounts in several currencies as ``1.10 EUR + 6.77 RUB``."""
    if m.amount_at_stake is not None:
        return f"{m.amount_at_stake:f} {m.amount_currency or ''}".strip()
    by_currency = m.detail.get("at_stake_by_currency")
    if isinstance(by_currency, dict) and by_currency:
        return " + ".join(f"{amount} {currency}" for currency, amount in by_currency.items())
    return None


def mismatch_json(m: Mismatch) -> dict[str, Any]:
    """A mismatch as one JSON object; money as decimal text, never a number."""
    return {
        "id": m.id, "message_id": m.message_id, "subject": m.subject,
        "kind": m.kind, "origin": m.origin, "status": m.status,
        "detail": m.detail, "note": m.note,
        "amount_at_stake": None if m.amount_at_stake is None else f"{m.amount_at_stake:f}",
        "amount_currency": m.amount_currency,
        "invoice_id": m.invoice_id,
        "opened_at": m.opened_at.isoformat(),
        "resolved_at": m.resolved_at.isoformat() if m.resolved_at else None,
    }  # fmt: skip


def json_line(m: Mismatch) -> str:
    return json.dumps(mismatch_json(m), ensure_ascii=False, sort_keys=True, default=str)


@mismatches.command("ack")
@click.argument("mismatch_id", type=int)
@click.option("--note", required=True, help="Why it is closed (kept with the mismatch).")
@click.option("--who", default=None, help="Who closes it (default: the login name).")
def ack(mismatch_id: int, note: str, who: str | None) -> None:
    """Close an open mismatch with a note; recorded as a mismatch.acknowledged event."""
    from pipeline.mismatches import acknowledge_mismatch

    if not note.strip():
        fail("--note must say why the mismatch is closed")
    from pipeline.cli.prices_commands import record_or_fail

    who = who or getpass.getuser()
    database = app_context().database()
    record_or_fail(database, app_context().settings)
    try:
        with database.write() as conn:
            closed = acknowledge_mismatch(
                conn, mismatch_id, who=who, note=note.strip(), now=datetime.now(UTC)
            )
    except MismatchError as exc:
        fail(str(exc), EXIT_FAILURE)
    if not closed:
        # A projector-owned mismatch closes when the projector applies the event: do it now
        # rather than at the next scheduled run (waiting if another projector is active).
        from pipeline.projector.runner import run_project

        run_project(database, app_context().settings, wait=True)
    click.echo(f"mismatch {mismatch_id} acknowledged by {who}")
