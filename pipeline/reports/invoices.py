"""The invoices report: per carrier invoice, its stated total against its lines and disputes.

An invoice is in a report when its period overlaps the report's (or it states no period);
``--partner`` does not apply (an invoice bills a carrier's traffic, not a partner's).
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import Connection, and_, or_, select

from pipeline.mismatches.kinds import OPEN
from pipeline.projector.store import ProjectionTables
from pipeline.reports import scan
from pipeline.reports.model import BOOL, INT, MONEY, TEXT, TIME, Field, Report, ReportParams, Rows

ZERO = Decimal(0)


def _invoices(conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
    inv, lines, m = tables.invoices, tables.invoice_lines, tables.mismatches
    in_period = or_(
        inv.c.period_from.is_(None),
        inv.c.period_to.is_(None),
        and_(inv.c.period_from < params.end, inv.c.period_to > params.start),
    )
    stmt = select(inv).where(in_period).order_by(inv.c.invoice_id)
    if params.carrier is not None:
        stmt = stmt.where(inv.c.carrier == params.carrier)
    headers = conn.execute(stmt).all()  # one row per invoice: few
    for header in headers:
        matched = ZERO
        latest = and_(
            lines.c.invoice_id == header.invoice_id,
            lines.c.version == header.version,
            lines.c.message_id.is_not(None),
        )
        stream = conn.execution_options(yield_per=scan.PAGE).execute(
            select(lines.c.cost).where(latest)
        )
        for line in stream:
            matched += line.cost
        disputed, open_count = ZERO, 0
        found = select(m.c.amount_at_stake).where(
            m.c.invoice_id == header.invoice_id, m.c.status == OPEN
        )
        for row in conn.execute(found):
            open_count += 1
            disputed += row.amount_at_stake or ZERO
        difference = (
            None
            if header.stated_total is None
            else header.stated_total - (header.lines_total or ZERO)
        )
        yield (
            header.invoice_id,
            header.carrier,
            header.version,
            header.period_from,
            header.period_to,
            header.currency,
            header.lines,
            header.stated_total,
            header.lines_total,
            difference,
            matched,
            disputed,
            open_count,
            header.closed,
            header.position,
        )


INVOICES = Report(
    name="invoices",
    version=1,
    grain="invoice (latest version)",
    columns=(
        Field("invoice_id", TEXT),
        Field("carrier", TEXT),
        Field("version", INT),
        Field("period_from", TIME),
        Field("period_to", TIME),
        Field("currency", TEXT),
        Field("lines", INT, "lines of the latest version"),
        Field("stated_total", MONEY, "the total the file states"),
        Field("lines_total", MONEY, "the sum of its lines, credits netted"),
        Field("difference", MONEY, "stated_total - lines_total"),
        Field("matched_amount", MONEY, "lines that bill a known message"),
        Field("disputed_amount", MONEY, "amount at stake of its open mismatches"),
        Field("open_mismatches", INT),
        Field("closed", BOOL),
        Field("last_position", INT, "the log position of its latest header"),
    ),
    compute=_invoices,
)
