"""The projector's shortcuts give exactly what the general rules give."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.money import to_nano
from pipeline.domain.status import KNOWN_STATUSES, Track, combine_parts, report_status, track_status
from pipeline.domain.tariffs import TariffRule
from pipeline.projector.derive import (
    FoldRules,
    _core,
    _money_matters,
    derive_view,
    part_identity,
    row_view,
    visible,
)
from pipeline.projector.finance import (
    CarrierTerms,
    ClosedInvoice,
    EmptyBook,
    FinanceRules,
    _costs,
    cost_precision,
    derive_finance,
)
from pipeline.projector.fold import fold_into
from pipeline.projector.message import MessageFacts, _dc
from tests.finance.money_events import line as invoice_line
from tests.projector.events import report, stored
from tests.projector.traffic import message_events

RULES = FoldRules(tariffs=[TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")])

reports = st.lists(
    st.tuples(st.sampled_from(sorted(KNOWN_STATUSES)), st.sampled_from("abc"), st.integers(1, 9)),
    max_size=5,
)


@settings(max_examples=200, deadline=None)
@given(reports=reports)
def test_one_part_combines_as_the_general_rule_for_that_part_twice(
    reports: list[tuple[int, str, int]],
) -> None:
    track = Track()
    for status, at, position in reports:
        track = report_status(track, status, (at, position))
    part = track_status(track)
    assert combine_parts([part]) == combine_parts([part, part])


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.randoms(use_true_random=False))
def test_the_per_event_payload_and_conditions_are_the_full_views(
    seed: int, order: random.Random
) -> None:
    events = stored(message_events(random.Random(seed), "m1", 0))
    order.shuffle(events)
    facts = MessageFacts("m1")
    for event in events:
        fold_into(facts, event, RULES)
        view = derive_view(facts, RULES)
        assert visible(facts, RULES) == (view.payload, view.conditions, view.is_final)
        assert facts.payload == view.payload
        assert facts.conditions == view.conditions


class _ClosedBook(EmptyBook):
    """A book where one invoice of mts, covering the traffic's day, is closed."""

    def closed_invoices(self, carrier: str) -> list[ClosedInvoice]:
        day = datetime(2026, 1, 15, tzinfo=UTC)
        return [ClosedInvoice("INV", day, day + timedelta(days=1))] if carrier == "mts" else []


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rates=st.booleans(),
    closed=st.booleans(),
    lines=st.booleans(),
    order=st.randoms(use_true_random=False),
)
def test_messages_spared_the_money_derivation_have_no_money_condition(
    seed: int, rates: bool, closed: bool, lines: bool, order: random.Random
) -> None:
    """``_money_matters`` decides when ``derive_finance`` may be skipped after an event: it
    must never skip a message for which the full derivation finds a condition."""
    card = (TariffRule(prefix="+7", price_per_part=Decimal("3.00"), currency="RUB"),)
    finance = FinanceRules(
        carriers={"mts": CarrierTerms(rates=card if rates else ())},
        book=_ClosedBook() if closed else EmptyBook(),
    )
    rules = FoldRules(tariffs=RULES.tariffs, finance=finance)
    made = message_events(random.Random(seed), "m1", 0)
    if lines:
        made.append(invoice_line("INV", 1, "0.61", mid="m1"))
    events = stored(made)
    order.shuffle(events)
    facts = MessageFacts("m1")
    for event in events:
        fold_into(facts, event, rules)
        sale = _core(facts, rules).sale
        if not _money_matters(facts, sale, finance):
            assert derive_finance(facts, sale, finance, part_identity)[1] == {}


class _RatesBook(EmptyBook):
    """A book with some of the traffic day's rates (either way), and maybe a closed invoice."""

    def __init__(self, rates: dict[tuple[str, str], Decimal], closed: bool) -> None:
        self.rates = rates
        self.closed = closed

    def rate(self, day: Any, base: str, quote: str) -> Decimal | None:
        return self.rates.get((base, quote)) if day == datetime(2026, 1, 15).date() else None

    def closed_invoices(self, carrier: str) -> list[ClosedInvoice]:
        return _ClosedBook().closed_invoices(carrier) if self.closed else []


pairs = st.sampled_from(
    [("EUR", "RUB"), ("RUB", "EUR"), ("USD", "RUB"), ("RUB", "USD"), ("EUR", "USD")]
)


@settings(max_examples=200, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    rates=st.dictionaries(pairs, st.sampled_from([Decimal("0.01"), Decimal("120")]), max_size=3),
    card=st.sampled_from([None, "RUB", "EUR", "USD"]),
    cost_currency=st.sampled_from(["EUR", "RUB", "USD"]),
    closed=st.booleans(),
    order=st.randoms(use_true_random=False),
)
def test_the_money_fast_path_skips_only_messages_without_a_money_condition(
    seed: int,
    rates: dict[tuple[str, str], Decimal],
    card: str | None,
    cost_currency: str,
    closed: bool,
    order: random.Random,
) -> None:
    """``_money_matters`` also spares a cost in a currency the day has no rate for: with any
    rates, rate card and cost currency, a skipped message has no money condition."""
    rule = TariffRule(prefix="+7", price_per_part=Decimal("300"), currency=card or "RUB")
    terms = {"mts": CarrierTerms(rates=(rule,))} if card else {}
    finance = FinanceRules(carriers=terms, book=_RatesBook(rates, closed))
    rules = FoldRules(tariffs=RULES.tariffs, finance=finance)
    events = stored(message_events(random.Random(seed), "m1", 0))
    for event in events:
        if event.payload.get("cost") is not None:
            event.payload["currency"] = cost_currency
            event.payload["cost"] = order.choice(["0.0333", "900"])
    order.shuffle(events)
    facts = MessageFacts("m1")
    for event in events:
        fold_into(facts, event, rules)
        sale = _core(facts, rules).sale
        if not _money_matters(facts, sale, finance):
            assert derive_finance(facts, sale, finance, part_identity)[1] == {}


@settings(max_examples=100, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    changes=st.lists(st.tuples(st.integers(0, 40), pairs), max_size=4),
    order=st.randoms(use_true_random=False),
)
def test_the_row_reuses_the_last_derivation_only_while_it_is_the_full_views(
    seed: int, changes: list[tuple[int, tuple[str, str]]], order: random.Random
) -> None:
    """``row_view`` (the derivation ``fold_into`` kept) equals ``derive_view`` after every
    event, also when the book gains a rate between events (the projector raises the
    epoch then, as it does for every reference event)."""
    card = (TariffRule(prefix="+7", price_per_part=Decimal("0.02"), currency="EUR"),)
    book = _RatesBook({}, closed=False)
    finance = FinanceRules(carriers={"mts": CarrierTerms(rates=card)}, book=book)
    rules = FoldRules(tariffs=RULES.tariffs, finance=finance)
    events = stored(message_events(random.Random(seed), "m1", 0))
    order.shuffle(events)
    facts = MessageFacts("m1")
    for index, event in enumerate(events):
        fold_into(facts, event, rules)
        assert row_view(facts, rules) == derive_view(facts, rules)
        for when, pair in changes:
            if when == index:
                book.rates[pair] = Decimal("100")
                rules.reference_changed()
                assert row_view(facts, rules) == derive_view(facts, rules)


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.randoms(use_true_random=False))
def test_the_spelled_out_fold_state_documents_are_the_generic_ones(
    seed: int, order: random.Random
) -> None:
    """``to_json`` writes the accepted message, submissions and costs as literals; they are
    the documents the generic walk over each record's slots gives."""
    events = stored(message_events(random.Random(seed), "m1", 0))
    order.shuffle(events)
    facts = MessageFacts("m1")
    for event in events:
        fold_into(facts, event, RULES)
        data = facts.to_json()
        assert data["accepted"] == _dc(facts.accepted)
        assert data["submissions"] == {k: _dc(v) for k, v in facts.submissions.items()}
        assert data["part_costs"] == {k: _dc(v) for k, v in facts.part_costs.items()}
        assert data["message_cost"] == _dc(facts.message_cost)
        back = MessageFacts.from_json("m1", data, version=facts.version,
                                      last_position=facts.last_position,
                                      updated_at=facts.updated_at)  # fmt: skip
        assert back.to_json() == data


def test_a_message_cost_is_written_as_the_generic_document() -> None:
    facts = MessageFacts("m1")
    event = stored([report("m1-c0", 1, 1, cost="0.50", currency="RUB", cost_scope="message",
                           mid="m1")])[0]  # fmt: skip
    fold_into(facts, event, RULES)
    assert facts.message_cost is not None
    assert facts.to_json()["message_cost"] == _dc(facts.message_cost)


def test_a_batch_pauses_the_cycle_collector_and_restores_it_as_it_was() -> None:
    import gc

    from pipeline.projector.project import cyclic_gc_paused

    assert gc.isenabled()
    with cyclic_gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with cyclic_gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # a caller that paused it keeps it paused
    finally:
        gc.enable()
    try:
        with cyclic_gc_paused():
            raise RuntimeError("a failed batch")
    except RuntimeError:
        pass
    assert gc.isenabled()


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    cost=st.sampled_from(["0.0333", "0.0000000001", "99999999999"]),
    card=st.sampled_from([None, "3.00", "0.0000000003"]),
    order=st.randoms(use_true_random=False),
)
def test_cost_precision_shortcuts_give_what_the_three_costs_give(
    seed: int, cost: str, card: str | None, order: random.Random
) -> None:
    """``cost_precision`` looks at the costs only when one could be too fine; whatever it
    skips, the plain rule (each of the three costs held at 10^-9) finds nothing either."""
    rates = (TariffRule(prefix="+7", price_per_part=Decimal(card), currency="RUB"),) if card else ()
    finance = FinanceRules(carriers={"mts": CarrierTerms(rates=rates)})
    rules = FoldRules(tariffs=RULES.tariffs, finance=finance)
    events = stored(message_events(random.Random(seed), "m1", 0))
    for event in events:
        if event.payload.get("cost") is not None:
            event.payload["cost"] = cost
    order.shuffle(events)
    facts = MessageFacts("m1")
    for event in events:
        fold_into(facts, event, rules)
        sale = _core(facts, rules).sale
        costs = _costs(facts, sale, finance, part_identity)
        fine = [m for m in (costs.expected, costs.reported, costs.invoiced)
                if m is not None and to_nano(m.amount) is None]  # fmt: skip
        got = cost_precision(facts, sale, finance, part_identity)
        assert (got is not None) == bool(fine)
