"""``explain`` shows a message's invoice lines, its three costs, its revenue and margin."""

from __future__ import annotations

from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector.explain import explain_message, mismatch_section, render_text
from tests.finance.money_events import acked, header, line, project, rate, rules
from tests.projector.events import accepted, report, submitted

RULES = rules()


def test_explain_shows_the_lines_the_costs_and_the_margin(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"),
        report("c1", 1, 3, cost="0.49", currency="RUB"),
        acked("m1", "2.27"),
        line("INV-1", 1, "0.62", cmid="c1"), header("INV-1"),
        line("INV-1", 1, "0.495", cmid="c1", version=2), header("INV-1", version=2),
        rate("2026-01-15", "EUR", "RUB", "100"),
    ])  # fmt: skip
    project(db, RULES)
    with db.read() as conn:
        doc = explain_message(conn, "m1", rules(), sections=[mismatch_section])
    assert doc is not None
    money = next(s for s in doc["sections"] if s["title"] == "Money")
    (row,) = money["rows"]
    assert row["carrier_cost_expected"] == "0.50 RUB"
    assert row["carrier_cost_reported"] == "0.49 RUB"
    assert row["carrier_cost_invoiced"] == "0.495 RUB"
    assert (row["carrier_cost"], row["carrier_cost_source"]) == ("0.495 RUB", "invoiced")
    assert row["revenue_acknowledged"] == "2.27 RUB"
    assert row["margin"] == "1.775 RUB"
    assert row["margin_reporting"] == "0.01775 EUR"
    assert row["fx_missing"] is False
    counted = [(x["version"], x["cost"], x["counts"]) for x in row["invoice_lines"]]
    assert counted == [(1, "0.62", False), (2, "0.495", True)]
    text = render_text(doc)
    assert "invoice INV-1 v1 line 1: 0.62 RUB, 1 part(s) (superseded by a later version)" in text
    assert "carrier_cost_source: invoiced" in text


def test_explain_shows_the_amount_at_stake_of_a_mismatch(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        line("INV-7", 1, "0.62", cmid="c1"),
    ])  # fmt: skip
    project(db, RULES)
    with db.read() as conn:
        doc = explain_message(conn, "m1", rules(), sections=[mismatch_section])
    assert doc is not None
    text = render_text(doc)
    assert "cost_mismatch (invoice) open" in text
    assert "at stake 0.12 RUB, invoice INV-7" in text
