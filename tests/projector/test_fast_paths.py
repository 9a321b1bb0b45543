"""The projector's shortcuts give exactly what the general rules give."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.status import KNOWN_STATUSES, Track, combine_parts, report_status, track_status
from pipeline.domain.tariffs import TariffRule
from pipeline.projector.derive import (
    FoldRules,
    _core,
    _money_matters,
    derive_view,
    part_identity,
    visible,
)
from pipeline.projector.finance import (
    CarrierTerms,
    ClosedInvoice,
    EmptyBook,
    FinanceRules,
    derive_finance,
)
from pipeline.projector.fold import fold_into
from pipeline.projector.message import MessageFacts
from tests.finance.money_events import line as invoice_line
from tests.projector.events import stored
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
