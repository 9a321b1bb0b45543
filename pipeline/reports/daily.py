"""The daily reports: billing, delivery, carrier costs and margin, summed in Python.

Each sums ``Decimal`` values read from message_state, so the totals are exact on both
engines whatever SQL would do with the text; the grains are those of the SQL views
(docs/reporting.md) so both give the same numbers. A message counts on the UTC day of its
``accepted_at``.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection

from pipeline.projector.store import ProjectionTables
from pipeline.reports import scan
from pipeline.reports.model import (
    DATE,
    INT,
    MONEY,
    RATIO,
    TEXT,
    Field,
    Report,
    ReportParams,
    Rows,
    sort_key,
)

ZERO = Decimal(0)
RATE_PLACES = Decimal("0.0001")

DELIVERED, NOT_DELIVERED, REJECTED, NO_FUNDS = 1, 2, 16, 52


def _billing(conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, 0, 0, ZERO])
    cols = ["accepted_at", "partner", "currency_iso", "parts_amount", "payment_sum"]
    # Rows unpacked by position (``cols`` order) in all four reports: a month is a million
    # rows, and reading each field by name cost as much as the sums.
    for accepted_at, partner, currency, parts, price in scan.messages(conn, tables, params, cols):
        if price is None:  # not priced (no tariff yet): no bill line
            continue
        g = groups[(scan.day_of(accepted_at), partner, currency)]
        parts = parts or 0
        g[0] += 1
        g[1] += parts
        if price > 0:
            g[2] += 1
            g[3] += parts
        g[4] += price
    for key in sorted(groups, key=sort_key):
        yield (*key, *groups[key])


BILLING = Report(
    name="billing",
    version=1,
    grain="day x partner x currency_iso",
    columns=(
        Field("day", DATE, "UTC day of accepted_at"),
        Field("partner", TEXT),
        Field("currency_iso", TEXT, "the tariff's currency"),
        Field("messages", INT, "priced messages (payment_sum known, zero included)"),
        Field("parts", INT, "their parts"),
        Field("charged_messages", INT, "messages with payment_sum > 0"),
        Field("charged_parts", INT, "their parts"),
        Field("payment_sum", MONEY, "what the partner owes"),
    ),
    compute=_billing,
)


def _delivery(conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
    groups: dict[tuple[Any, ...], list[int]] = defaultdict(lambda: [0] * 6)
    cols = ["accepted_at", "carrier", "status", "is_final"]
    index = {DELIVERED: 1, NOT_DELIVERED: 2, REJECTED: 3, NO_FUNDS: 4}
    for accepted_at, carrier, status, is_final in scan.messages(conn, tables, params, cols):
        g = groups[(scan.day_of(accepted_at), carrier)]
        g[0] += 1
        if not is_final:
            g[5] += 1
        elif status in index:
            g[index[status]] += 1
    for key in sorted(groups, key=sort_key):
        g = groups[key]
        # Delivered among the messages that reached a final status (as v_delivery_daily):
        # one still in flight is no failure yet; none final, no rate.
        finals = g[0] - g[5]
        rate = (
            (Decimal(g[1]) / Decimal(finals)).quantize(RATE_PLACES, ROUND_HALF_UP)
            if finals
            else None
        )
        yield (*key, *g, rate)


DELIVERY = Report(
    name="delivery",
    version=2,
    grain="day x carrier",
    columns=(
        Field("day", DATE, "UTC day of accepted_at"),
        Field("carrier", TEXT, "empty for messages no carrier took (refused)"),
        Field("messages", INT),
        Field("delivered", INT, "final status 1"),
        Field("not_delivered", INT, "final status 2"),
        Field("rejected", INT, "final status 16"),
        Field("no_funds", INT, "final status 52"),
        Field("in_progress", INT, "not final yet"),
        Field(
            "delivery_rate",
            RATIO,
            "delivered / final messages, 4 places, half-up; empty when none is final",
        ),
    ),
    compute=_delivery,
)

COSTS = ("expected", "reported", "invoiced")


def _costs(conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
    # [messages, parts, expected, reported, invoiced, difference]
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, 0, ZERO, ZERO, ZERO, ZERO])
    cols = ["accepted_at", "carrier", "parts_amount"]
    for name in COSTS:
        cols += [f"carrier_cost_{name}", f"carrier_cost_{name}_currency"]
    for row in scan.messages(conn, tables, params, cols):
        accepted_at, carrier, parts, expected, e_cur, reported, r_cur, invoiced, i_cur = row
        # Each currency the message has a cost in, once (most have one).
        currencies = []
        if expected is not None:
            currencies.append(e_cur)
        if reported is not None and r_cur not in currencies:
            currencies.append(r_cur)
        if invoiced is not None and i_cur not in currencies:
            currencies.append(i_cur)
        if not currencies:
            continue
        day = scan.day_of(accepted_at)
        for currency in currencies:
            g = groups[(day, carrier, currency)]
            g[0] += 1
            g[1] += parts or 0
            has_expected = expected is not None and e_cur == currency
            if has_expected:
                g[2] += expected
            if reported is not None and r_cur == currency:
                g[3] += reported
            if invoiced is not None and i_cur == currency:
                g[4] += invoiced
                if has_expected:
                    g[5] += invoiced - expected
    for key in sorted(groups, key=sort_key):
        yield (*key, *groups[key])


CARRIER_COSTS = Report(
    name="costs",
    version=1,
    grain="day x carrier x currency",
    columns=(
        Field("day", DATE, "UTC day of accepted_at"),
        Field("carrier", TEXT),
        Field("currency", TEXT, "the currency of the costs summed in this row"),
        Field("messages", INT, "messages with at least one cost in this currency"),
        Field("parts", INT, "their parts"),
        Field("expected_cost", MONEY, "the buy-side rate card's cost"),
        Field("reported_cost", MONEY, "what DLRs reported"),
        Field("invoiced_cost", MONEY, "invoice lines, credits netted"),
        Field("difference", MONEY, "invoiced - expected, over messages that have both"),
    ),
    compute=_costs,
)


def _margin(conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
    # [messages, revenue, cost, margin, fx_missing]
    groups: dict[tuple[Any, ...], list[Any]] = defaultdict(lambda: [0, ZERO, ZERO, ZERO, 0])
    cols = ["accepted_at", "partner", "carrier", *scan.country_columns(tables)]
    cols += ["revenue_reporting", "cost_reporting", "margin_reporting", "fx_missing"]
    for row in scan.messages(conn, tables, params, cols):
        revenue, cost, margin, fx_missing = row[4:]
        key = (scan.day_of(row[0]), row[1], row[2], scan.country_of(row, tables))
        g = groups[key]
        g[0] += 1
        if revenue is not None:
            g[1] += revenue
        if cost is not None:
            g[2] += cost
        if margin is not None:
            g[3] += margin
        if fx_missing:
            g[4] += 1
    for key in sorted(groups, key=sort_key):
        yield (*key, params.reporting_currency, *groups[key])


MARGIN = Report(
    name="margin",
    version=1,
    grain="day x partner x carrier x country",
    columns=(
        Field("day", DATE, "UTC day of accepted_at"),
        Field("partner", TEXT),
        Field("carrier", TEXT),
        Field("country", TEXT, "ISO region of the phone (phonenumbers)"),
        Field("currency", TEXT, "finance.reporting_currency"),
        Field("messages", INT),
        Field("revenue", MONEY, "acknowledged revenue, converted"),
        Field("cost", MONEY, "carrier cost, converted"),
        Field("margin", MONEY, "over messages with a margin (not fx_missing)"),
        Field("fx_missing", INT, "messages whose day has no fx.rate: left out of the sums"),
    ),
    compute=_margin,
)

__all__ = ["BILLING", "CARRIER_COSTS", "DELIVERY", "MARGIN"]
