"""What the demo prints at the end: each message as Altegio and finance see it."""

from __future__ import annotations

from typing import Any

import click
from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.dispatch.tables import deliveries
from pipeline.mismatches import open_mismatches
from pipeline.projector.tables import message_state

STATUS_NAMES = {1: "delivered", 2: "not delivered", 4: "sent to phone", 8: "to operator",
                16: "rejected", 52: "no funds"}  # fmt: skip


def print_results(database: Database, received: list[dict[str, Any]]) -> None:
    last_sent = {item["id"]: item for item in received}
    with database.read() as conn:
        rows = conn.execute(
            select(message_state, deliveries.c.state.label("delivery"))
            .select_from(
                message_state.outerjoin(
                    deliveries, deliveries.c.message_id == message_state.c.message_id
                )
            )
            .order_by(message_state.c.message_id)
        ).all()
        mismatches = open_mismatches(conn)
    header = (
        f"{'message':<8} {'phone':<14} {'status':<16} {'parts':>5} {'price':>9} {'cur':<4}"
        f" {'carrier cost':>14}  {'Altegio has':<28}"
    )
    click.echo(header)
    click.echo("-" * len(header))
    for row in rows:
        status = f"{row.status} {STATUS_NAMES.get(row.status, '')}" if row.status else "-"
        price = "-" if row.payment_sum is None else str(row.payment_sum)
        cost = (
            f"{row.carrier_cost} {row.carrier_cost_currency}"
            if row.carrier_cost is not None
            else "-"
        )
        sent = last_sent.get(row.message_id)
        altegio = (
            f"{sent['status']} / {sent['payment_sum']} {sent['currency_iso']} / "
            f"{sent['parts_amount']}p"
            if sent
            else f"nothing ({row.delivery or 'not sendable'})"
        )
        click.echo(
            f"{row.message_id:<8} {row.phone:<14} {status:<16} {row.parts_amount or '-':>5} "
            f"{price:>9} {row.currency_iso or '':<4} {cost:>14}  {altegio:<28}"
        )
    click.echo(f"\nopen mismatches: {len(mismatches)}")
    for m in mismatches:
        click.echo(f"  #{m.id} {m.kind:<22} message {m.message_id or '-':<8} {_describe(m)}")


def _describe(mismatch: Any) -> str:
    """One readable line of a mismatch's detail (the full detail: `smsrecon explain`)."""
    if mismatch.kind == "conflicting_final":
        finals = [
            f"{STATUS_NAMES.get(status, status)} at {at[11:19]}Z (event {position})"
            for reports in mismatch.detail.get("parts", {}).values()
            for status, at, position in reports
        ]
        return "carrier reported " + " then ".join(finals)
    if mismatch.amount_at_stake is not None:
        return f"at stake {mismatch.amount_at_stake} {mismatch.amount_currency}" + _invoice_reason(
            mismatch
        )
    return ", ".join(f"{k}={v}" for k, v in sorted(mismatch.detail.items()))[:90]


def _invoice_reason(mismatch: Any) -> str:
    """What an invoice dispute is about, in the words a person would use with the carrier."""
    d = mismatch.detail
    invoice = f" (invoice {mismatch.invoice_id})" if mismatch.invoice_id else ""
    if mismatch.kind == "cost_mismatch":
        return f"{invoice}: billed {d.get('invoiced')}, the rate card says {d.get('expected')}"
    if mismatch.kind == "duplicate_charge":
        return f"{invoice}: charged twice"
    if mismatch.kind == "invoice_total_mismatch":
        stated, lines = d.get("stated_total"), d.get("lines_total")
        return f"{invoice}: total stated {stated}, lines add up to {lines}"
    if mismatch.kind == "missing_invoice_line":
        return f"{invoice}: closed without a line for this message"
    return invoice
