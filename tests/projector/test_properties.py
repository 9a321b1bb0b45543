"""Properties: the fold does not care about order, duplicates or batch boundaries."""

from __future__ import annotations

import random
from decimal import Decimal

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete

from pipeline.db.engine import Database
from pipeline.domain.status import FINAL_STATUSES
from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import append
from pipeline.projector.derive import FoldRules
from pipeline.projector.replay import verify
from pipeline.projector.runner import catch_up
from pipeline.projector.store import LIVE
from tests.projector.events import fold_all, stored
from tests.projector.traffic import message_events, traffic

RULES = FoldRules(tariffs=[TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")])


@settings(max_examples=200, deadline=None)
@given(seed=st.integers(0, 10_000), order=st.randoms(use_true_random=False),
       dupes=st.lists(st.integers(0, 30), max_size=4))  # fmt: skip
def test_any_interleaving_and_duplication_of_a_messages_events_gives_one_answer(
    seed: int, order: random.Random, dupes: list[int]
) -> None:
    events = stored(message_events(random.Random(seed), "m1", 0))
    _facts, expected = fold_all("m1", events, RULES)
    shuffled = list(events) + [events[i % len(events)] for i in dupes]
    order.shuffle(shuffled)
    _facts, got = fold_all("m1", shuffled, RULES)
    assert got.payload == expected.payload
    assert got.conditions == expected.conditions
    assert (got.carrier_cost, got.carrier_message_id) == (
        expected.carrier_cost,
        expected.carrier_message_id,
    )
    # The rules: a final is final; a price exists exactly when a tariff does.
    finals = {
        e.payload.get("status") for e in events if e.type == "carrier.status"
    } & FINAL_STATUSES
    if any(e.type == "message.refused" for e in events):
        assert got.status == 52
    elif (
        finals and len({e.carrier_message_id for e in events if e.type == "carrier.submitted"}) == 1
    ):
        assert got.is_final and got.status in finals
    assert (got.payment_sum is None) == ("no_tariff" in got.conditions)


def _reset(db: Database) -> None:
    with db.write() as conn:
        for table in (LIVE.state, LIVE.mismatches, LIVE.correlations, LIVE.held, LIVE.checkpoints):
            conn.execute(delete(table))


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(splits=st.lists(st.integers(1, 40), min_size=1, max_size=4))
def test_replay_equals_incremental_projection_for_any_batch_split(
    db: Database, splits: list[int]
) -> None:
    if not hasattr(db, "_traffic_loaded"):
        append(db, traffic(seed=7, messages=25))
        db._traffic_loaded = True  # type: ignore[attr-defined]
    _reset(db)
    for size in splits:
        catch_up(db, RULES, grace_seconds=60, batch_size=size, max_events=size * 3)
    catch_up(db, RULES, grace_seconds=60, batch_size=max(splits[-1], 25))
    assert verify(db, RULES, grace_seconds=60, batch_size=500)[1] == 0
