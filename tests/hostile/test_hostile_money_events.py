"""A money event the projector cannot use is skipped, never halts it and never reaches a
column it would not fit: an absurd rate, a header without a version, a closing of an
invoice never imported, a line in a currency that is not one, an acknowledgement likewise.

Each is appended through the normal writer (the log takes any JSON payload); the good
events after it are projected, and ``replay --verify`` skips exactly the same ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append
from pipeline.projector.tables import fx_rates, invoices, mismatches
from tests.finance.money_events import header, line, project, rate, rules, state, verified
from tests.projector.events import accepted, report, submitted

RULES = rules()
WHEN = datetime(2026, 1, 15, 12, tzinfo=UTC)


def _event(kind: str, payload: dict, key: str, **ids: str) -> NewEvent:  # type: ignore[type-arg]
    return NewEvent(kind, WHEN, "test", payload, dedup_key=key, **ids)


HOSTILE = {
    "rate_not_a_number": _event(
        "fx.rate", {"day": "2026-01-15", "base": "EUR", "quote": "RUB", "rate": "abc"}, "h1"
    ),
    "rate_huge": _event(
        "fx.rate", {"day": "2026-01-15", "base": "EUR", "quote": "RUB", "rate": "1E+5000"}, "h2"
    ),
    "rate_negative": _event(
        "fx.rate", {"day": "2026-01-15", "base": "EUR", "quote": "RUB", "rate": "-1"}, "h3"
    ),
    "rate_day_999": _event(
        "fx.rate", {"day": "999-01-15", "base": "EUR", "quote": "RUB", "rate": "1"}, "h4"
    ),
    "rate_bad_currency": _event(
        "fx.rate", {"day": "2026-01-15", "base": "EURO", "quote": "RUB", "rate": "1"}, "h5"
    ),
    "header_no_version": _event(
        "carrier.invoice", {"invoice_id": "X", "carrier": "mts", "version": "one"}, "h6"
    ),
    "header_total_huge": _event(
        "carrier.invoice",
        {"invoice_id": "X", "carrier": "mts", "version": 1, "total": "9" * 60},
        "h7",
    ),
    "header_bad_period": _event(
        "carrier.invoice",
        {"invoice_id": "X", "carrier": "mts", "version": 1, "period_from": "yesterday"},
        "h8",
    ),
    "header_long_id": _event(
        "carrier.invoice", {"invoice_id": "I" * 500, "carrier": "mts", "version": 1}, "h9"
    ),
    "line_bad_currency": _event(
        "carrier.invoiced",
        {"cost": "0.50", "currency": "RUBLES", "invoice_id": "X", "version": 1, "line": 1},
        "h10",
        message_id="m1",
    ),
    "line_no_cost": _event(
        "carrier.invoiced",
        {"currency": "RUB", "invoice_id": "X", "version": 1, "line": 2},
        "h11",
        message_id="m1",
    ),
    "ack_bad_currency": _event(
        "dispatch.acknowledged",
        {"status": 1, "payment_sum": "2.27", "currency_iso": "roubles"},
        "h12",
        message_id="m1",
    ),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_hostile_money_event_is_skipped_and_the_rest_projected(db: Database, name: str) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1")])
    append(db, [HOSTILE[name]])
    append(db, [
        report("c1", 1, 3), line("INV-1", 1, "0.50", cmid="c1"), header("INV-1", total="0.50"),
        rate("2026-01-15", "EUR", "RUB", "100"),
    ])  # fmt: skip
    project(db, RULES)
    with db.read() as conn:
        kinds = [r.kind for r in conn.execute(select(mismatches))]
        stored_rates = conn.execute(select(fx_rates.c.rate)).scalars().all()
        stored = conn.execute(select(invoices.c.invoice_id)).scalars().all()
    assert kinds == ["unreadable_event"]
    row = state(db, "m1")
    assert (row.status, row.carrier_cost_invoiced) == (1, Decimal("0.50"))
    assert stored_rates == [Decimal("100")]
    assert stored == ["INV-1"]
    verified(db, RULES)


def test_closing_an_invoice_never_imported_changes_nothing(db: Database) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3)])
    append(db, [_event("carrier.invoice_closed", {"invoice_id": "NEVER"}, "c1")])
    project(db, RULES)
    with db.read() as conn:
        assert conn.execute(select(mismatches)).all() == []
        assert conn.execute(select(invoices)).all() == []
    verified(db, RULES)
