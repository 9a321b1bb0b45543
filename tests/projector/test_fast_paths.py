"""The projector's shortcuts give exactly what the general rules give."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.domain.status import KNOWN_STATUSES, Track, combine_parts, report_status, track_status
from pipeline.domain.tariffs import TariffRule
from pipeline.projector.derive import FoldRules, derive_view, visible
from pipeline.projector.fold import fold_into
from pipeline.projector.message import MessageFacts
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
