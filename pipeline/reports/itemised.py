"""The itemised reports: one row per message, one row per open mismatch.

Each row carries its ``message_id`` and the log position that last changed it, so a person
can take any number in a report back to ``smsrecon explain``. The messages report is also
what a period close pins for ``report corrections`` to compare field by field.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, and_, or_, select

from pipeline.mismatches.kinds import OPEN, PROJECTOR_ORIGINS
from pipeline.projector.store import ProjectionTables
from pipeline.reports import scan
from pipeline.reports.model import (
    BOOL,
    DATE,
    INT,
    MONEY,
    TEXT,
    TIME,
    Field,
    Report,
    ReportParams,
    Rows,
)

#: The message_state columns the messages report shows, in order, after its key columns.
MESSAGE_FIELDS = (
    ("partner", TEXT),
    ("carrier", TEXT),
    ("status", INT),
    ("is_final", BOOL),
    ("parts_amount", INT),
    ("payment_sum", MONEY),
    ("currency_iso", TEXT),
    ("carrier_cost_expected", MONEY),
    ("carrier_cost_expected_currency", TEXT),
    ("carrier_cost_reported", MONEY),
    ("carrier_cost_reported_currency", TEXT),
    ("carrier_cost_invoiced", MONEY),
    ("carrier_cost_invoiced_currency", TEXT),
    ("carrier_cost", MONEY),
    ("carrier_cost_source", TEXT),
    ("acked_payment_sum", MONEY),
    ("margin", MONEY),
    ("margin_currency", TEXT),
    ("revenue_reporting", MONEY),
    ("cost_reporting", MONEY),
    ("margin_reporting", MONEY),
    ("fx_missing", BOOL),
)
#: Leading columns of the messages report; the rest are MESSAGE_FIELDS.
MESSAGE_KEYS = ("message_id", "last_position", "accepted_at", "day", "country")


def _messages(conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
    names = [name for name, _ in MESSAGE_FIELDS]
    cols = ["message_id", "last_position", "accepted_at", *scan.country_columns(tables), *names]
    # The fields by position (the row is a tuple in ``cols`` order): a million rows of 22
    # fields by name was a fifth of the report's time.
    fields = len(cols) - len(names)
    for row in scan.messages(conn, tables, params, cols, ordered=True):
        yield (
            row[0],
            row[1],
            row[2],
            scan.day_of(row[2]),
            scan.country_of(row, tables),
            *row[fields:],
        )


MESSAGES = Report(
    name="messages",
    version=1,
    grain="message",
    columns=(
        Field("message_id", TEXT),
        Field("last_position", INT, "the log position that last changed the message"),
        Field("accepted_at", TIME),
        Field("day", DATE, "UTC day of accepted_at"),
        Field("country", TEXT, "ISO region of the phone (phonenumbers)"),
        *(Field(name, kind) for name, kind in MESSAGE_FIELDS),
    ),
    compute=_messages,
    itemised=True,
)


def _mismatches(conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
    m, state, invoices = tables.mismatches, tables.state, tables.invoices
    carrier = state.c.carrier.label("msg_carrier")
    stmt = (
        select(m, state.c.partner, carrier, invoices.c.carrier.label("inv_carrier"))
        .select_from(
            m.outerjoin(state, state.c.message_id == m.c.message_id).outerjoin(
                invoices, invoices.c.invoice_id == m.c.invoice_id
            )
        )
        .where(
            m.c.status == OPEN,
            # Only what the log proves: dispatcher rows are no fold of the log, so no pinned
            # run could be rebuilt with them (they are in ``smsrecon mismatches list``).
            m.c.origin.in_(PROJECTOR_ORIGINS),
            m.c.opened_at >= params.start,
            m.c.opened_at < params.end,
        )
        # Open rows are unique by (subject, kind, origin): a total order on both engines.
        .order_by(m.c.opened_at, m.c.subject, m.c.kind, m.c.origin)
    )
    if params.partner is not None:
        stmt = stmt.where(state.c.partner == params.partner)
    if params.carrier is not None:
        stmt = stmt.where(
            or_(
                state.c.carrier == params.carrier,
                and_(state.c.message_id.is_(None), invoices.c.carrier == params.carrier),
            )
        )
    for row in conn.execution_options(yield_per=scan.PAGE).execute(stmt):
        yield (
            row.message_id,
            row.last_position,
            row.kind,
            row.origin,
            row.subject,
            row.partner,
            row.msg_carrier if row.msg_carrier is not None else row.inv_carrier,
            row.invoice_id,
            row.amount_at_stake,
            row.amount_currency,
            row.opened_at,
            _detail_text(row.detail),
        )


def _detail_text(detail: Any) -> str:
    return json.dumps(detail, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


MISMATCHES = Report(
    name="mismatches",
    version=1,
    grain="open mismatch (opened in the period)",
    columns=(
        Field("message_id", TEXT, "empty for an invoice's own mismatch"),
        Field("last_position", INT, "the log position that last changed the mismatch"),
        Field("kind", TEXT),
        Field("origin", TEXT, "projector or invoice"),
        Field("subject", TEXT),
        Field("partner", TEXT),
        Field("carrier", TEXT),
        Field("invoice_id", TEXT),
        Field("amount_at_stake", MONEY),
        Field("amount_currency", TEXT),
        Field("opened_at", TIME),
        Field("detail", TEXT, "the mismatch's detail as compact JSON"),
    ),
    compute=_mismatches,
    itemised=True,
)
