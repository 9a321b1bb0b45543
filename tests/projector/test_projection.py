"""Incremental projection on both backends: held reports, grace, mismatches, exactly once."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import append
from pipeline.mismatches import acknowledge_mismatch, open_mismatches
from pipeline.projector.derive import FoldRules
from pipeline.projector.replay import rebuild, verify
from pipeline.projector.runner import catch_up
from pipeline.projector.store import LIVE, CheckpointMoved, store_checkpoint
from pipeline.projector.tables import message_state, mismatches, projector_held
from tests.projector.events import accepted, refused, report, submitted
from tests.projector.traffic import traffic

RULES = FoldRules(tariffs=[TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")])
GRACE = 600.0


def project(db: Database, batch_size: int = 100, rules: FoldRules = RULES) -> int:
    return catch_up(db, rules, grace_seconds=GRACE, batch_size=batch_size)[0]


def state(db: Database, mid: str):  # type: ignore[no-untyped-def]
    with db.read() as conn:
        return conn.execute(select(message_state).where(message_state.c.message_id == mid)).first()


def kinds(db: Database, status: str = "open") -> set[tuple[str, str]]:
    with db.read() as conn:
        rows = conn.execute(select(mismatches).where(mismatches.c.status == status))
        return {(r.subject, r.kind) for r in rows}


def test_report_before_its_submission_is_held_then_applied(db: Database) -> None:
    append(db, [accepted("m1"), report("c1", 1, 2)])
    project(db)
    assert state(db, "m1").status is None
    append(db, [submitted("m1", "c1", 1)])
    project(db)
    row = state(db, "m1")
    assert (row.status, row.is_final, row.payment_sum) == (1, True, Decimal("2.27"))
    with db.read() as conn:
        assert conn.execute(select(projector_held)).all() == []


def test_report_before_message_accepted_waits_unsent_then_completes(db: Database) -> None:
    append(db, [report(None, 1, 2, mid="m1")])
    project(db)
    row = state(db, "m1")
    assert row.status == 1 and row.payload_hash is None
    append(db, [accepted("m1")])
    project(db)
    row = state(db, "m1")
    assert row.payment_sum == Decimal("2.27") and row.payload_hash is not None


def test_uncorrelated_report_opens_unknown_message_after_the_grace_in_event_time(
    db: Database,
) -> None:
    append(db, [report("ghost", 1, 0), accepted("m9", 5)])
    project(db)
    assert kinds(db) == set()  # five minutes of event time: still within the grace
    append(db, [accepted("m10", 11)])
    project(db)
    assert kinds(db) == {("carrier:mts:ghost", "unknown_message")}
    append(db, [accepted("m11", 12), submitted("m11", "ghost", 13)])
    project(db)
    assert kinds(db) == set()
    assert ("carrier:mts:ghost", "unknown_message") in kinds(db, "resolved")
    assert state(db, "m11").status == 1


def test_conflicting_finals_open_a_mismatch_and_the_later_carrier_time_wins(db: Database) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1"), report("c1", 2, 5), report("c1", 1, 3)])
    project(db)
    assert state(db, "m1").status == 2
    assert kinds(db) == {("m1", "conflicting_final")}


def test_late_intermediate_after_a_final_changes_nothing(db: Database) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3)])
    project(db)
    before = state(db, "m1")
    append(db, [report("c1", 4, 4)])
    project(db)
    after = state(db, "m1")
    assert (after.status, after.version, after.payload_hash) == (
        1, before.version, before.payload_hash,
    )  # fmt: skip
    assert after.last_position > before.last_position


def test_refused_then_delivered_is_flagged(db: Database) -> None:
    append(db, [accepted("m1"), refused("m1"), report(None, 1, 3, mid="m1")])
    project(db)
    assert state(db, "m1").status == 52
    assert kinds(db) == {("m1", "refused_then_delivered")}


def test_no_tariff_is_a_mismatch_and_a_rebuild_with_a_tariff_prices_it(db: Database) -> None:
    append(db, [accepted("m1", phone="+14155550100"), submitted("m1", "c1")])
    project(db)
    assert state(db, "m1").payment_sum is None
    assert kinds(db) == {("m1", "no_tariff")}
    usd = FoldRules(tariffs=[*RULES.tariffs, TariffRule("+1", Decimal("0.0075"), "USD")])
    rebuild(db, usd, grace_seconds=GRACE, batch_size=2)
    assert state(db, "m1").payment_sum == Decimal("0.01")
    assert kinds(db) == set()


def test_checkpoint_is_compare_and_set(db: Database) -> None:
    append(db, [accepted("m1")])
    project(db)
    with db.write() as conn, pytest.raises(CheckpointMoved):
        store_checkpoint(conn, LIVE, old=0, new=5, clock=None, now=accepted("x").occurred_at)


def test_projection_is_the_same_whatever_the_batch_size(db: Database) -> None:
    events = [
        report("c2", 1, 3), accepted("m1"), submitted("m1", "c1"), report("c1", 4, 2),
        accepted("m2"), report("c1", 1, 3), submitted("m2", "c2"), report("c1", 2, 5),
        report("ghost", 1, 6), accepted("m3", 30),
    ]  # fmt: skip
    append(db, events)
    project(db, batch_size=1)
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=1000)[1] == 0
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=3)[1] == 0


def test_acknowledged_mismatch_survives_a_rebuild(db: Database) -> None:
    append(db, [accepted("m1", phone="+14155550100")])
    project(db)
    with db.read() as conn:
        (row,) = open_mismatches(conn, message_id="m1")
    with db.write() as conn:
        acknowledge_mismatch(conn, row.id, who="anna", note="new market", now=row.opened_at)
    project(db)
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=10)[1] == 0
    rebuild(db, RULES, grace_seconds=GRACE, batch_size=10)
    with db.read() as conn:
        (after,) = conn.execute(select(mismatches)).all()
    assert (after.status, after.note) == ("acknowledged", "new market")


def test_verify_reports_a_tampered_row(db: Database) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1")])
    project(db)
    with db.write() as conn:
        conn.execute(message_state.update().values(status=1))
    found: list[str] = []
    _upto, count = verify(
        db, RULES, grace_seconds=GRACE, batch_size=10, report=lambda d: found.append(d.line())
    )
    assert count >= 1 and any("status" in line for line in found)


def test_the_projectors_driver_reader_gives_what_the_event_log_reader_gives(db: Database) -> None:
    from pipeline.eventlog import read_in
    from pipeline.projector.store import read_events

    append(db, traffic(seed=5, messages=12))
    with db.read() as conn:
        expected = read_in(conn, after=3, limit=40).events
        got = read_events(conn, after=3, limit=40)
    assert got == expected and len(got) == 40
    assert all(e.occurred_at.tzinfo is not None for e in got)
