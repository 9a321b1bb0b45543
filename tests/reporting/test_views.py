"""The public views: the same rows on SQLite and PostgreSQL, and exact sums of money.

The log: random traffic (two countries, one priced, DLR costs in EUR per part), Altegio's
acknowledgements, FX rates, an invoice with a stated total, lines of 0.1 and 0.2, a credit
note and a cost finer than 10^-9. Every view is compared across the engines row by row,
and every total with a ``Decimal`` sum over the tables it reads, computed here.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select, text

from pipeline.db.backend import CURRENCY_EXPONENTS
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.projector.tables import invoice_lines, invoices, message_state, mismatches
from pipeline.times import parse_stored_time
from tests.finance.money_events import acked, closed, header, line, project, rate, rules
from tests.projector.events import accepted, report, submitted
from tests.projector.traffic import traffic

VIEWS = (
    "v_message_status",
    "v_billing_daily",
    "v_delivery_daily",
    "v_carrier_costs",
    "v_margin_daily",
    "v_open_mismatches",
    "v_invoices",
)
#: Depends on when the query runs (age) or when the events were appended to each database
#: (a mismatch opens at its event's recorded_at), not on the log's content: compared apart.
CLOCK_COLUMNS = {"age_hours", "opened_at"}


def finance_log() -> list[NewEvent]:
    """Traffic plus every kind of money the views sum."""
    events = traffic(seed=11, messages=80)
    events += [
        # 0.1 + 0.2 RUB on one day and carrier: a float sum would be 0.30000000000000004.
        accepted("f1"), submitted("f1", "fc1"), report("fc1", 1, 3),
        accepted("f2"), submitted("f2", "fc2"), report("fc2", 1, 3),
        line("INV-9", 1, "0.1", cmid="fc1"),
        line("INV-9", 2, "0.2", cmid="fc2"),
        # A credit note on its own: a negative invoiced cost.
        accepted("f3"), submitted("f3", "fc3"), report("fc3", 1, 3),
        line("INV-9", 3, "-0.05", cmid="fc3"),
        # A cost with ten decimals: never rounded.
        accepted("f4"), submitted("f4", "fc4"),
        report("fc4", 1, 3, cost="0.0333000001", currency="EUR", cost_scope="part"),
        # A line no message claims.
        line("INV-9", 4, "0.77", cmid="nobody"),
        header("INV-9", total="1.00", lines=4),
        closed("INV-9"),
        rate("2026-01-15", "RUB", "EUR", "0.0101"),
        rate("2026-01-15", "EUR", "RUB", "99.01"),
    ]  # fmt: skip
    for n in range(0, 80, 3):
        events.append(acked(f"m{n}", "2.27"))
    events += [acked("f1", "2.27"), acked("f2", "2.27"), acked("f3", "2.27")]
    return events


def load(db: Database) -> None:
    append(db, finance_log())
    project(db, rules())


def normal(value: Any) -> Any:
    """One value as both engines can be compared on: decimals by their text (the same
    digits on both), booleans as 0/1, times as aware UTC, JSON decoded."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, Decimal):
        return format(value, "f")  # the text PostgreSQL renders (str() would say 0E-9)
    if hasattr(value, "tzinfo"):
        return parse_stored_time(value.isoformat()) if value.tzinfo else value
    return value


def rows(db: Database, view: str) -> list[dict[str, Any]]:
    with db.read() as conn:
        result = conn.execute(text(f"SELECT * FROM {view}"))
        out = [dict(r._mapping) for r in result]
    for row in out:
        for name, value in row.items():
            if name in ("accepted_at", "final_at", "opened_at", "period_from", "period_to"):
                row[name] = None if value is None else _time(value)
            elif name == "detail":
                row[name] = json.loads(value) if isinstance(value, str) else value
            else:
                row[name] = normal(value)
    return sorted(out, key=lambda r: json.dumps(r, sort_keys=True, default=str))


def _time(value: Any) -> Any:
    return parse_stored_time(value if isinstance(value, str) else value.isoformat())


def dec(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@pytest.fixture
def projected(both: tuple[Database, Database]) -> tuple[Database, Database]:
    for db in both:
        load(db)
    return both


def test_every_view_is_the_same_on_both_engines_row_for_row(
    projected: tuple[Database, Database],
) -> None:
    lite, pg = projected
    for view in VIEWS:
        a, b = rows(lite, view), rows(pg, view)
        assert a, f"{view} is empty: the log should give it rows"
        assert list(a[0]) == list(b[0]), f"{view}: columns differ"
        strip = [{k: v for k, v in r.items() if k not in CLOCK_COLUMNS} for r in a]
        strip_b = [{k: v for k, v in r.items() if k not in CLOCK_COLUMNS} for r in b]
        assert strip == strip_b, view
        for row_a, row_b in zip(a, b, strict=True):
            if "age_hours" in row_a:
                assert abs(row_a["age_hours"] - row_b["age_hours"]) <= 1


def _state(db: Database) -> list[Any]:
    with db.read() as conn:
        return list(conn.execute(select(message_state)))


def _day(row: Any) -> str:
    return row.accepted_at.date().isoformat()


def _sums(items: Iterable[tuple[Any, Decimal | None]]) -> dict[Any, Decimal]:
    out: dict[Any, Decimal] = defaultdict(Decimal)
    for key, amount in items:
        if amount is not None:
            out[key] += amount
    return dict(out)


@pytest.mark.parametrize("engine", [0, 1], ids=["sqlite", "postgresql"])
def test_view_totals_equal_decimal_sums_over_the_tables(
    projected: tuple[Database, Database], engine: int
) -> None:
    db = projected[engine]
    state = [r for r in _state(db) if r.accepted_at is not None]

    billing = rows(db, "v_billing_daily")
    priced = [r for r in state if r.payment_sum is not None]
    want = _sums(((_day(r), r.partner, r.currency_iso), r.payment_sum) for r in priced)
    assert {(r["day"], r["partner"], r["currency_iso"]): dec(r["payment_sum"])
            for r in billing} == want  # fmt: skip
    assert sum(r["messages"] for r in billing) == len(priced)

    costs = rows(db, "v_carrier_costs")
    carried = [r for r in state if r.carrier is not None]
    kinds = ("expected", "reported", "invoiced")
    for kind, column in zip(
        kinds, ("expected_cost", "reported_cost", "invoiced_cost"), strict=True
    ):
        # Each cost in its own currency's row.
        want = _sums(
            ((_day(r), r.carrier, getattr(r, f"carrier_cost_{kind}_currency")),
             getattr(r, f"carrier_cost_{kind}"))
            for r in carried
            if getattr(r, f"carrier_cost_{kind}_nano") is not None
        )  # fmt: skip
        got = {(r["day"], r["carrier"], r["currency"]): dec(r[column]) for r in costs}
        assert {k: v for k, v in got.items() if v is not None} == want, kind
    # A message counts once in each currency any of its costs is in.
    in_rows = sum(
        len({getattr(r, f"carrier_cost_{k}_currency") for k in kinds} - {None}) for r in carried
    )
    assert sum(r["messages"] for r in costs) == in_rows

    margin = rows(db, "v_margin_daily")
    for column, name in (("revenue", "revenue_reporting"), ("cost", "cost_reporting"),
                         ("margin", "margin_reporting")):  # fmt: skip
        # An amount the 10^-9 scale cannot hold is left out (cost_precision says so).
        want = _sums(
            ((_day(r), r.partner, r.carrier, r.country), getattr(r, name))
            for r in state
            if getattr(r, f"{name}_nano") is not None
        )
        got = {(r["day"], r["partner"], r["carrier"], r["country"]): dec(r[column])
               for r in margin}  # fmt: skip
        assert {k: v for k, v in got.items() if v is not None} == want, column
    assert sum(r["fx_missing"] for r in margin) == sum(1 for r in state if r.fx_missing)

    delivery = rows(db, "v_delivery_daily")
    assert sum(r["delivered"] for r in delivery) == sum(1 for r in carried if r.status == 1)
    assert sum(r["in_progress"] for r in delivery) == sum(1 for r in carried if not r.is_final)

    with db.read() as conn:
        open_rows = list(conn.execute(select(mismatches).where(mismatches.c.status == "open")))
        lines = list(conn.execute(select(invoice_lines)))
        headers = list(conn.execute(select(invoices)))
    stake = rows(db, "v_open_mismatches")
    assert len(stake) == len(open_rows)
    assert sum((dec(r["amount_at_stake"]) or Decimal(0)) for r in stake) == sum(
        (r.amount_at_stake for r in open_rows if r.amount_at_stake is not None), Decimal(0)
    )
    version = {h.invoice_id: h.version for h in headers}
    for row in rows(db, "v_invoices"):
        mine = [li for li in lines if li.invoice_id == row["invoice_id"]
                and li.version == version[row["invoice_id"]]]  # fmt: skip
        assert row["lines"] == len(mine)
        assert dec(row["lines_total"]) == sum((li.cost for li in mine), Decimal(0))
        assert dec(row["matched_amount"]) + dec(row["disputed_amount"]) == dec(row["lines_total"])

    status = {r["message_id"]: r for r in rows(db, "v_message_status")}
    assert len(status) == len(_state(db))
    for r in state:
        assert dec(status[r.message_id]["payment_sum"]) == r.payment_sum


@pytest.mark.parametrize("engine", [0, 1], ids=["sqlite", "postgresql"])
def test_point_one_plus_point_two_is_exactly_point_three(
    projected: tuple[Database, Database], engine: int
) -> None:
    db = projected[engine]
    with db.read() as conn:
        got = conn.execute(
            text(
                "SELECT invoiced_cost, invoiced_cost_nano FROM v_carrier_costs "
                "WHERE currency = 'RUB' AND invoiced_cost_nano IS NOT NULL"
            )
        ).all()
    # f1 + f2 + the credit of f3: 0.1 + 0.2 - 0.05.
    assert [(str(cost), nano) for cost, nano in got] == [("0.250000000", 250_000_000)]
    invoice = {r["invoice_id"]: r for r in rows(db, "v_invoices")}["INV-9"]
    assert invoice["lines_total"] == "1.020000000"  # 0.1 + 0.2 - 0.05 + 0.77
    assert invoice["stated_total"] == "1.000000000"
    # f1 and f2 are billed below the rate card's 0.50 (cost_mismatch open) and one line is
    # nobody's: disputed; the credit of f3 is matched.
    assert invoice["disputed_amount"] == "1.070000000"
    assert invoice["matched_amount"] == "-0.050000000"


@pytest.mark.parametrize("engine", [0, 1], ids=["sqlite", "postgresql"])
def test_a_negative_amount_keeps_its_sign(
    projected: tuple[Database, Database], engine: int
) -> None:
    f3 = {r["message_id"]: r for r in rows(projected[engine], "v_message_status")}["f3"]
    assert f3["invoiced_cost"] == "-0.050000000"
    assert f3["invoiced_cost_nano"] == -50_000_000


@pytest.mark.parametrize("engine", [0, 1], ids=["sqlite", "postgresql"])
def test_a_cost_finer_than_a_nano_opens_cost_precision_and_stays_null(
    projected: tuple[Database, Database], engine: int
) -> None:
    db = projected[engine]
    with db.read() as conn:
        row = conn.execute(select(message_state).where(message_state.c.message_id == "f4")).one()
        opened = conn.execute(
            select(mismatches.c.detail).where(
                mismatches.c.subject == "f4",
                mismatches.c.kind == "cost_precision",
                mismatches.c.status == "open",
            )
        ).all()
    assert row.carrier_cost_reported == Decimal("0.0333000001")
    assert row.carrier_cost_reported_nano is None
    assert len(opened) == 1
    assert opened[0].detail["costs"] == {"reported": "0.0333000001"}
    f4 = {r["message_id"]: r for r in rows(db, "v_message_status")}["f4"]
    assert f4["reported_cost"] is None


@pytest.mark.parametrize(
    ("units", "scale", "shown"),
    [
        (-5, 2, "-0.05"),
        (-150, 2, "-1.50"),
        (0, 9, "0.000000000"),
        (-1, 9, "-0.000000001"),
        (-1_500_000_000, 9, "-1.500000000"),
        (9_223_372_036_854_775_807, 9, "9223372036.854775807"),
        (227, 0, "227"),
        (12345, 4, "1.2345"),
    ],
)
def test_units_are_shown_as_exact_decimals(
    db: Database, units: int, scale: int, shown: str
) -> None:
    backend = db.backend
    with db.read() as conn:
        by_number = conn.execute(
            text(f"SELECT {backend.units_as_decimal_sql('u', scale)} FROM (SELECT :u AS u) t"),
            {"u": units},
        ).scalar()
        by_column = conn.execute(
            text(
                f"SELECT {backend.units_as_decimal_sql('u', 'e')} "
                "FROM (SELECT CAST(:u AS BIGINT) AS u, CAST(:e AS INTEGER) AS e) t"
            ),
            {"u": units, "e": scale},
        ).scalar()
    assert normal(by_number) == shown
    if scale in CURRENCY_EXPONENTS:  # a column of exponents is a currency's
        assert normal(by_column) == shown
