"""A parallel fold gives exactly the tables of one fold, for random logs and worker counts.

Every projection table is compared whole, row by row: message_state, mismatches (all but
the surrogate id, which no rebuild keeps), correlations, held reports and timers, the
checkpoint (position and event clock), invoices, invoice lines, FX rates and price tables.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector import parallel
from pipeline.projector.replay import _drop_shadow, fold_into_shadow
from pipeline.projector.shard import Shard, ShardResult
from pipeline.projector.store import ProjectionTables
from tests.finance.money_events import GRACE, rules
from tests.projector.shard_logs import acknowledgements, price_tables, random_log

RULES = rules()


def snapshot(db: Database, tables: ProjectionTables) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in a stable order, without what no rebuild keeps."""
    out = {}
    with db.read() as conn:
        for table in tables.all():
            skip = {"id", "updated_at"} if table is tables.checkpoints else {"id"}
            cols = [c for c in table.c if c.name not in skip]
            rows = conn.execute(select(*cols)).all()
            out[table.name.split("__")[0]] = sorted((tuple(r) for r in rows), key=repr)
    return out


def fold_both(
    db: Database, workers: int, batch_size: int, remote: Any = None
) -> tuple[dict, dict, ProjectionTables]:
    upto = parallel_head(db)
    one = fold_into_shadow(db, RULES, grace_seconds=GRACE, batch_size=batch_size, upto=upto)
    expected = snapshot(db, one)
    _drop_shadow(db, one)
    with never_serially():
        many = parallel.fold_into_shadow(db, RULES, grace_seconds=GRACE, batch_size=batch_size,
                                         upto=upto, workers=workers, inline=True,
                                         remote=remote)  # fmt: skip
    return expected, snapshot(db, many), many


@contextmanager
def never_serially() -> Iterator[None]:
    """The workers must agree within their rounds: the fold in one process that follows
    when they do not would give the right rows whatever the workers did."""
    from pipeline.projector import replay

    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        raise AssertionError("the workers did not agree: the fold fell back to one process")

    original = replay.fold_into_shadow
    replay.fold_into_shadow = refuse  # type: ignore[assignment]
    try:
        yield
    finally:
        replay.fold_into_shadow = original  # type: ignore[assignment]


def parallel_head(db: Database) -> int:
    from pipeline.projector.runner import head_position

    return head_position(db)


@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), workers=st.integers(2, 4),
       batch_size=st.sampled_from([2, 7, 50, 1000]))  # fmt: skip
def test_a_parallel_fold_equals_one_fold(
    db: Database, seed: int, workers: int, batch_size: int
) -> None:
    rng = random.Random(seed)
    examples = getattr(db, "_examples", 0)
    db._examples = examples + 1  # type: ignore[attr-defined]
    # The log grows with every example (it is append-only): new traffic, new trouble, and
    # acknowledgements of rows the previous examples' folds opened.
    append(db, random_log(rng, f"x{examples}", start=examples * 40.0))
    if rng.random() < 0.5:
        append(db, price_tables(db, rng))
    expected, got, many = fold_both(db, workers, batch_size)
    assert got == expected
    append(db, acknowledgements(db, rng, many))
    _drop_shadow(db, many)


def test_workers_agree_at_once_on_a_log_without_failures(db: Database) -> None:
    from tests.projector.traffic import traffic

    append(db, traffic(seed=3, messages=30))
    expected, got, many = fold_both(db, 3, 20)
    assert got == expected
    _drop_shadow(db, many)


def result(index: int, failed: dict[int, tuple[str, bool]] = {}, untried: set[int] = set()):  # noqa: B006
    return ShardResult(index, dict(failed), set(untried), set(), 10, None)


def test_a_message_event_that_fails_for_its_owner_must_be_skipped_by_the_others() -> None:
    fails = {5: ("parts: not a count", True)}
    first = parallel.agree([result(0, fails), result(1), result(2)], {}, False)
    assert not first.agreed and first.forced == fails
    second = parallel.agree([result(0, fails), result(1, untried={5}), result(2, untried={5})],
                            fails, False)  # fmt: skip
    assert second.agreed


def test_a_reference_event_failing_for_one_worker_is_skipped_by_all() -> None:
    fails = {7: ("fx.rate: bad", False)}
    first = parallel.agree([result(0), result(1, fails)], {}, False)
    assert not first.agreed and first.forced == fails
    again = parallel.agree([result(0, untried={7}), result(1, untried={7})], fails, False)
    assert again.agreed and again.forced == fails


def test_an_unreadable_claim_means_another_round() -> None:
    assert not parallel.agree([result(0), result(1)], {}, True).agreed


def test_every_event_has_one_owner() -> None:
    from pipeline.eventlog import StoredEvent
    from tests.projector.events import T0

    event = StoredEvent(1, "carrier.status", "m-1", "mts", "c1", T0, T0, "t", {}, "k")
    owners = [Shard(k, 3).owns(event) for k in range(3)]
    assert owners.count(True) == 1
