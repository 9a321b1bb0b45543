"""Every money mismatch opened and resolved, with its amount at stake worked out by hand.

The sale is 2.27 RUB a part; the carrier's rate card says 0.50 RUB a part, agreeing within
0.01 RUB (``money_events``). Every scenario ends with ``replay --verify`` agreeing, the log
folded in batches of one event and of a thousand.
"""

from __future__ import annotations

from decimal import Decimal

from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector.fold import MESSAGE_EVENTS
from pipeline.projector.reference import REFERENCE_EVENTS
from tests.finance.money_events import (
    MTS,
    acked,
    closed,
    header,
    line,
    money,
    project,
    rate,
    rules,
    state,
    verified,
)
from tests.projector.events import accepted, report, submitted

RULES = rules()
D = Decimal
THREE_PARTS = "x" * 307  # GSM 7-bit: 153 characters a part, so 307 take three


def test_reference_events_are_not_message_facts() -> None:
    assert not REFERENCE_EVENTS & MESSAGE_EVENTS


def test_the_three_costs_are_kept_apart_and_the_invoice_counts(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"),
        report("c1", 1, 3, cost="0.49", currency="RUB"),
        line("INV-1", 1, "0.495", cmid="c1"), header("INV-1", total="0.495"),
    ])  # fmt: skip
    project(db, RULES)
    row = state(db, "m1")
    assert (row.carrier_cost_expected, row.carrier_cost_expected_currency) == (D("0.50"), "RUB")
    assert (row.carrier_cost_reported, row.carrier_cost_reported_currency) == (D("0.49"), "RUB")
    assert (row.carrier_cost_invoiced, row.carrier_cost_invoiced_currency) == (D("0.495"), "RUB")
    assert (row.carrier_cost, row.carrier_cost_source) == (D("0.495"), "invoiced")
    # 0.495 against the reported 0.49: 0.005 apart, within 0.01.
    assert money(db) == {}
    verified(db, RULES)


def test_cost_mismatch_opens_beyond_the_tolerance_and_resolves_with_a_credit(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        line("INV-1", 1, "0.62", cmid="c1"),
    ])  # fmt: skip
    project(db, RULES)
    # No DLR cost: the rate card's 0.50 is expected; 0.62 is 0.12 over.
    assert money(db) == {("m1", "cost_mismatch", "invoice"): (D("0.12"), "RUB")}
    append(db, [line("INV-1", 2, "-0.11", cmid="c1")])
    project(db, RULES)
    # Credited to 0.51: 0.01 from 0.50, exactly at the tolerance's edge, agrees.
    assert state(db, "m1").carrier_cost_invoiced == D("0.51")
    assert money(db) == {}
    assert money(db, "resolved") == {("m1", "cost_mismatch", "invoice"): (D("0.12"), "RUB")}
    verified(db, RULES)


def test_the_tolerance_edges_are_inclusive_and_a_hair_beyond_is_not(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        accepted("m2"), submitted("m2", "c2"), report("c2", 1, 3),
        accepted("m3"), submitted("m3", "c3"), report("c3", 1, 3),
        line("INV-1", 1, "0.51", cmid="c1"),
        line("INV-1", 2, "0.49", cmid="c2"),
        line("INV-1", 3, "0.5101", cmid="c3"),
    ])  # fmt: skip
    project(db, RULES)
    assert money(db) == {("m3", "cost_mismatch", "invoice"): (D("0.0101"), "RUB")}
    relative = rules(mts=MTS.__class__(rates=MTS.rates, tolerance_rel=D("0.02")))
    # rel 0.02 of the larger: 0.0102 for 0.51 and 0.5101; 0.5101 is 0.0101 away: agrees.
    from pipeline.projector.replay import rebuild

    rebuild(db, relative, grace_seconds=600.0, batch_size=7)
    assert money(db) == {}
    verified(db, relative)


def test_per_part_lines_add_up_and_a_credit_nets_to_a_parts_mismatch(db: Database) -> None:
    append(db, [
        accepted("m1", text=THREE_PARTS),
        submitted("m1", "c1", part=1, parts=3),
        submitted("m1", "c2", part=2, parts=3),
        submitted("m1", "c3", part=3, parts=3),
        line("INV-1", 1, "0.50", cmid="c1"),
        line("INV-1", 2, "0.50", cmid="c2"),
        line("INV-1", 3, "0.50", cmid="c3"),
    ])  # fmt: skip
    project(db, RULES)
    row = state(db, "m1")
    assert (row.parts_amount, row.carrier_cost_invoiced, row.carrier_cost_expected) == (
        3,
        D("1.50"),
        D("1.50"),
    )
    assert money(db) == {}
    # A credit note cancels part 3's line: 2 parts of 3 billed, for 1.00. The price per
    # part is right, so it is a difference in parts (-0.50), not also one in cost.
    append(db, [line("INV-1", 4, "-0.50", cmid="c3")])
    project(db, RULES)
    assert state(db, "m1").carrier_cost_invoiced == D("1.00")
    assert money(db) == {("m1", "parts_mismatch", "invoice"): (D("-0.50"), "RUB")}
    verified(db, RULES)


def test_dlr_costs_of_some_parts_are_no_reported_cost_until_every_part_has_one(
    db: Database,
) -> None:
    append(db, [
        accepted("m1", text=THREE_PARTS),
        submitted("m1", "c1", part=1, parts=3),
        submitted("m1", "c2", part=2, parts=3),
        submitted("m1", "c3", part=3, parts=3),
        report("c1", 1, 3, cost="0.50", currency="RUB", cost_scope="part"),
        report("c2", 1, 3, cost="0.50", currency="RUB", cost_scope="part"),
        report("c3", 1, 3),
        line("INV-1", 1, "0.50", cmid="c1"),
        line("INV-1", 2, "0.50", cmid="c2"),
        line("INV-1", 3, "0.50", cmid="c3"),
    ])  # fmt: skip
    project(db, RULES)
    # Two parts' 1.00 is not what the message cost: the invoice's 1.50 is held against the
    # rate card's 1.50, and agrees (not 0.50 "overcharged" for the part without a cost).
    row = state(db, "m1")
    assert (row.carrier_cost_reported, row.carrier_cost_expected) == (None, D("1.50"))
    assert money(db) == {}
    append(db, [report("c3", 1, 4, cost="0.49", currency="RUB", cost_scope="part")])
    project(db, RULES)
    assert state(db, "m1").carrier_cost_reported == D("1.49")
    assert money(db) == {}  # 1.50 against 1.49: within 0.01
    verified(db, RULES)


def test_parts_mismatch_of_the_invoice_and_of_the_text_are_two_rows(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3, parts=2),
        line("INV-1", 1, "1.50", cmid="c1", parts=3),
    ])  # fmt: skip
    project(db, RULES)
    found = money(db)
    assert found[("m1", "parts_mismatch", "projector")] == (None, None)
    # The carrier said 2 parts (1.00 expected), the invoice bills 3 at the right price:
    # one part too many, and no difference in cost beyond it.
    assert found[("m1", "parts_mismatch", "invoice")] == (D("0.50"), "RUB")
    assert len(found) == 2
    # The carrier supersedes its invoice with the right parts and amount.
    fixed = line("INV-1", 1, "1.00", cmid="c1", parts=2, version=2)
    append(db, [fixed, header("INV-1", version=2)])
    project(db, RULES)
    assert set(money(db)) == {("m1", "parts_mismatch", "projector")}
    verified(db, RULES)


def test_currency_mismatch_names_the_foreign_amount(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        line("INV-1", 1, "0.006", cmid="c1", currency="EUR"),
    ])  # fmt: skip
    project(db, RULES)
    assert money(db) == {("m1", "currency_mismatch", "invoice"): (D("0.006"), "EUR")}
    append(db, [line("INV-1", 1, "0.50", cmid="c1", version=2), header("INV-1", version=2)])
    project(db, RULES)
    assert money(db) == {}
    assert ("m1", "currency_mismatch", "invoice") in money(db, "resolved")
    verified(db, RULES)


def test_duplicate_charge_on_two_lines_and_in_two_invoices(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        accepted("m2"), submitted("m2", "c2"), report("c2", 1, 3),
        line("INV-1", 1, "0.50", cmid="c1"),
        line("INV-1", 2, "0.50", cmid="c1"),
        line("INV-1", 3, "0.50", cmid="c2"),
        line("INV-2", 1, "0.50", cmid="c2"),
    ])  # fmt: skip
    project(db, RULES)
    # The second charge is the dispute, and once set aside the first is the right price.
    assert money(db) == {
        ("m1", "duplicate_charge", "invoice"): (D("0.50"), "RUB"),
        ("m2", "duplicate_charge", "invoice"): (D("0.50"), "RUB"),
    }
    # Credit notes cancel the second charges.
    append(db, [line("INV-1", 4, "-0.50", cmid="c1"), line("INV-2", 2, "-0.50", cmid="c2")])
    project(db, RULES)
    assert money(db) == {}
    verified(db, RULES)


def test_a_credit_note_of_its_own_cancels_a_charge_of_another_invoice(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        line("INV-1", 1, "0.50", cmid="c1"), line("INV-1", 2, "0.50", cmid="c1"),
    ])  # fmt: skip
    project(db, RULES)
    assert set(money(db)) == {("m1", "duplicate_charge", "invoice")}
    append(db, [line("CN-1", 1, "-0.50", cmid="c1")])
    project(db, RULES)
    assert money(db) == {}
    assert state(db, "m1").carrier_cost_invoiced == D("0.50")
    verified(db, RULES)


def test_parts_billed_in_two_invoices_once_each_are_no_duplicate(db: Database) -> None:
    append(db, [
        accepted("m1", text=THREE_PARTS),
        submitted("m1", "c1", part=1, parts=3),
        submitted("m1", "c2", part=2, parts=3),
        submitted("m1", "c3", part=3, parts=3),
        line("JAN", 1, "0.50", cmid="c1"), line("JAN", 2, "0.50", cmid="c2"),
        line("FEB", 1, "0.50", cmid="c3"),
    ])  # fmt: skip
    project(db, RULES)
    assert money(db) == {}
    # The same part billed again in February is one.
    append(db, [line("FEB", 2, "0.50", cmid="c1")])
    project(db, RULES)
    assert money(db) == {("m1", "duplicate_charge", "invoice"): (D("0.50"), "RUB")}
    verified(db, RULES)


def test_billed_but_rejected(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 16, 3),
        line("INV-1", 1, "0.50", cmid="c1"),
    ])  # fmt: skip
    project(db, RULES)
    assert money(db) == {("m1", "billed_but_rejected", "invoice"): (D("0.50"), "RUB")}
    append(db, [line("INV-1", 2, "-0.50", cmid="c1")])
    project(db, RULES)
    assert money(db) == {}
    verified(db, RULES)


def test_invoice_unknown_message_after_the_grace_then_claimed(db: Database) -> None:
    append(db, [
        line("INV-1", 1, "0.50", cmid="ghost", minute=0),
        line("INV-1", 2, "0.50", mid="nobody", minute=0),
        accepted("m9", 60), submitted("m9", "c9", 61),  # the clock passes the 10 min grace
    ])  # fmt: skip
    project(db, RULES)
    # What the unclaimed line bills is at stake.
    assert money(db) == {
        ("carrier:mts:ghost", "invoice_unknown_message", "invoice"): (D("0.50"), "RUB"),
        ("nobody", "invoice_unknown_message", "invoice"): (D("0.50"), "RUB"),
    }
    # The submission of "ghost" arrives late: the line finds its message.
    append(db, [accepted("m1", 62), submitted("m1", "ghost", 63), accepted("nobody", 64)])
    project(db, RULES)
    assert set(money(db)) == set()
    verified(db, RULES)


def test_a_new_version_without_an_unknown_line_resolves_its_dispute(db: Database) -> None:
    append(db, [
        line("INV-1", 1, "0.50", cmid="ghost", minute=0),
        line("INV-1", 2, "0.50", cmid="shade", minute=0),
        header("INV-1", lines=2),
        accepted("m9", 60), submitted("m9", "c9", 61),  # the clock passes the 10 min grace
    ])  # fmt: skip
    project(db, RULES)
    assert set(money(db)) == {
        ("carrier:mts:ghost", "invoice_unknown_message", "invoice"),
        ("carrier:mts:shade", "invoice_unknown_message", "invoice"),
    }
    # "wisp" is billed too, and waits for its carrier id when version 2 arrives.
    append(db, [line("INV-1", 3, "0.50", cmid="wisp", minute=62)])
    # Version 2 bills "shade" again but no longer "ghost" nor "wisp": only these two lines
    # stop counting, and "wisp" is not disputed when its grace runs out.
    append(db, [
        line("INV-1", 1, "0.50", cmid="shade", version=2), header("INV-1", version=2),
        accepted("m10", 200), submitted("m10", "c10", 201),
    ])  # fmt: skip
    project(db, RULES)
    assert set(money(db)) == {("carrier:mts:shade", "invoice_unknown_message", "invoice")}
    assert ("carrier:mts:ghost", "invoice_unknown_message", "invoice") in money(db, "resolved")
    verified(db, RULES)


def test_missing_invoice_line_on_a_closed_invoice(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        accepted("m2"), submitted("m2", "c2"), report("c2", 1, 3),
        line("INV-1", 1, "0.50", cmid="c1"), header("INV-1", total="0.50"),
    ])  # fmt: skip
    project(db, RULES)
    assert money(db) == {}  # an open invoice may still be missing lines
    append(db, [closed("INV-1")])
    project(db, RULES)
    assert money(db) == {("m2", "missing_invoice_line", "invoice"): (D("0.50"), "RUB")}
    # A message submitted within the period after the closing is missing too.
    append(db, [accepted("m3", 5), submitted("m3", "c3", 6)])
    project(db, RULES)
    assert ("m3", "missing_invoice_line", "invoice") in money(db)
    # Version 2 bills m2 and m3 and drops m1: m1's line is missing now.
    append(db, [
        line("INV-1", 1, "0.50", cmid="c2", version=2),
        line("INV-1", 2, "0.50", cmid="c3", version=2),
        header("INV-1", version=2, total="1.00", lines=2),
    ])  # fmt: skip
    project(db, RULES)
    assert money(db) == {("m1", "missing_invoice_line", "invoice"): (D("0.50"), "RUB")}
    assert state(db, "m1").carrier_cost_invoiced is None
    assert state(db, "m2").carrier_cost_invoiced == D("0.50")
    verified(db, RULES)


def test_a_delivered_only_carrier_does_not_miss_an_undelivered_message(db: Database) -> None:
    delivered_only = rules(mts=MTS.__class__(rates=MTS.rates, charge_on="delivered"))
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 2, 3),
        accepted("m2"), submitted("m2", "c2"), report("c2", 1, 3),
        header("INV-1", lines=0), closed("INV-1"),
    ])  # fmt: skip
    project(db, delivered_only)
    assert state(db, "m1").carrier_cost_expected == D("0")
    assert money(db) == {("m2", "missing_invoice_line", "invoice"): (D("0.50"), "RUB")}
    verified(db, delivered_only)


def test_invoice_total_mismatch_opens_and_a_new_version_resolves_it(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        line("INV-1", 1, "0.50", cmid="c1"), header("INV-1", total="0.75"),
    ])  # fmt: skip
    project(db, RULES)
    assert money(db) == {("invoice:INV-1", "invoice_total_mismatch", "invoice"): (D("0.25"), "RUB")}
    fixed = line("INV-1", 1, "0.50", cmid="c1", version=2)
    append(db, [fixed, header("INV-1", version=2, total="0.50")])
    project(db, RULES)
    assert money(db) == {}
    verified(db, RULES)


def test_negative_margin_from_the_rate_card_and_from_a_dlr(db: Database) -> None:
    dear = rules(mts=MTS.__class__(rates=(MTS.rates[0].__class__("+7", D("3.00"), "RUB"),)))
    append(db, [
        accepted("m1"), submitted("m1", "c1"),
        accepted("free", free=True), submitted("free", "c2"),
    ])  # fmt: skip
    project(db, dear)
    # 2.27 sold, 3.00 expected: 0.73 lost. The free message is not flagged.
    assert money(db) == {("m1", "negative_margin", "projector"): (D("0.73"), "RUB")}
    # The DLR reports what it really cost: 2.00, a margin again.
    append(db, [report("c1", 1, 3, cost="2.00", currency="RUB")])
    project(db, dear)
    assert money(db) == {}
    verified(db, dear)


def test_negative_margin_through_the_days_rate_arriving_later(db: Database) -> None:
    euro = rules(mts=MTS.__class__(rates=(MTS.rates[0].__class__("+7", D("0.03"), "EUR"),)))
    append(db, [accepted("m1"), submitted("m1", "c1")])
    project(db, euro)
    assert money(db) == {}  # no rate for the day: nothing is claimed
    append(db, [rate("2026-01-15", "EUR", "RUB", "98.50")])
    project(db, euro)
    # 0.03 EUR x 98.50 = 2.955 RUB against 2.27: 0.685 lost.
    assert money(db) == {("m1", "negative_margin", "projector"): (D("0.685"), "RUB")}
    verified(db, euro)


def test_revenue_margin_and_the_reporting_currency(db: Database) -> None:
    append(db, [
        accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3),
        acked("m1", "2.27"), line("INV-1", 1, "0.50", cmid="c1"),
    ])  # fmt: skip
    project(db, RULES)
    row = state(db, "m1")
    revenue = (row.acked_payment_sum, row.acked_currency_iso, row.acked_status)
    assert revenue == (D("2.27"), "RUB", 1)
    assert (row.margin, row.margin_currency) == (D("1.77"), "RUB")
    assert (row.revenue_reporting, row.margin_reporting, row.fx_missing) == (None, None, True)
    append(db, [rate("2026-01-15", "EUR", "RUB", "100")])
    project(db, RULES)
    row = state(db, "m1")
    assert (row.revenue_reporting, row.cost_reporting, row.margin_reporting) == (
        D("0.0227"),
        D("0.005"),
        D("0.0177"),
    )
    assert row.fx_missing is False
    verified(db, RULES)


def test_stale_opens_on_the_event_clock_and_resolves_when_final(db: Database) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1"), report("c1", 4, 3)])
    project(db, RULES)
    assert money(db) == {}
    # Another message 73 hours later moves the event clock past the 72 h.
    append(db, [accepted("m2", 73 * 60), submitted("m2", "c2", 73 * 60 + 1)])
    project(db, RULES)
    assert set(money(db)) == {("m1", "stale", "projector")}
    append(db, [report("c1", 1, 73 * 60 + 2)])
    project(db, RULES)
    assert money(db) == {}
    assert ("m1", "stale", "projector") in money(db, "resolved")
    verified(db, RULES)
