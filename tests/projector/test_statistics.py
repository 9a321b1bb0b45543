"""A long fold refreshes the planner's statistics of the tables it fills
(``pipeline.projector.statistics``): without them PostgreSQL searched the correlations by
carrier alone and every batch's look-up cost in proportion to the log."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from sqlalchemy import select, text

from pipeline.db.engine import Database
from pipeline.eventlog import append
from pipeline.projector import statistics
from pipeline.projector.derive import FoldRules
from pipeline.projector.runner import catch_up
from pipeline.projector.statistics import StatisticsSchedule
from pipeline.projector.store import LIVE, load_correlations
from tests.pg_roles import as_role, run_grant, throwaway_role
from tests.projector.traffic import traffic


def test_refreshes_as_the_applied_events_double(db: Database) -> None:
    schedule = StatisticsSchedule(db, LIVE)
    assert [schedule.applied(n) for n in (5_000, 19_999, 20_000, 25_000, 39_999)] == [
        False, False, True, False, False,
    ]  # fmt: skip
    # A batch that jumps past several thresholds refreshes once and waits for the next.
    assert schedule.applied(170_000) is True
    assert schedule.next_at == 320_000
    assert schedule.applied(300_000) is False


def analysed(db: Database, table: str) -> bool:
    with db.read() as conn:
        if db.is_postgres:
            return conn.scalar(
                text("SELECT last_analyze IS NOT NULL FROM pg_stat_user_tables "
                     "WHERE relname = :t"), {"t": table},
            )  # fmt: skip
        stat1 = conn.scalar(text("SELECT count(*) FROM sqlite_master WHERE name='sqlite_stat1'"))
        return bool(stat1)


def test_a_fold_past_the_first_threshold_analyses_its_tables_on_postgresql(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(statistics, "FIRST", 50)
    append(db, traffic(seed=3, messages=40))
    assert not analysed(db, "projector_correlations")
    catch_up(db, FoldRules(), grace_seconds=600, batch_size=30)
    # SQLite's planner needs none (Backend.refresh_planner_statistics): nothing is written.
    assert analysed(db, "projector_correlations") is db.is_postgres


def test_with_statistics_postgresql_looks_correlations_up_by_both_key_columns(
    pg_db: Database,
) -> None:
    rows = [
        {"carrier": "mts", "carrier_message_id": f"c{n}", "message_id": f"m{n}",
         "part": None, "position": n + 1}
        for n in range(3_000)
    ]  # fmt: skip
    with pg_db.write() as conn:
        conn.execute(LIVE.correlations.insert(), rows)
    with pg_db.write() as conn:
        pg_db.backend.refresh_planner_statistics(conn, LIVE.all())
    ids = [f"c{n}" for n in range(1_000, 2_000)]
    co = LIVE.correlations
    query = select(co.c.message_id).where(co.c.carrier == "mts", co.c.carrier_message_id.in_(ids))
    with pg_db.read() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        plan = "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {compiled}")))
        found = load_correlations(conn, LIVE, [("mts", i) for i in ids])
    # The planner knows ``carrier = 'mts'`` holds for every row, so it expects as many rows
    # as ids asked for; without statistics it expected a handful and searched by carrier
    # alone, comparing each row with every id.
    expected = int(re.search(r"rows=(\d+)", plan.splitlines()[0]).group(1))  # type: ignore[union-attr]
    assert 500 <= expected <= 2_000, plan[:300]
    assert len(found) == 1_000
    # Only the columns an index searches by: a large JSON column's statistics (the fold
    # state's) would cost most of the time and decide no plan.
    with pg_db.read() as conn:
        analysed_columns = set(
            conn.scalars(
                text("SELECT attname FROM pg_stats WHERE tablename = 'projector_correlations'")
            )
        )
    assert analysed_columns == {"carrier", "carrier_message_id", "message_id"}


def test_the_runtime_role_refreshes_only_tables_it_owns_and_gets_no_warning(
    pg_db: Database, pg_admin_url: str, tmp_path: Path
) -> None:
    """The runtime role owns no table (``pipeline.db.roles``): ANALYZE would warn for each
    of them, so it is not asked; autovacuum keeps the live tables' statistics."""
    with throwaway_role(pg_db, pg_admin_url, "smsrecon_rt") as role:
        url = pg_db.engine.url.render_as_string(hide_password=False)
        assert run_grant(url, tmp_path, role).exit_code == 0
        runtime = as_role(pg_db, role)
        notices: list[str] = []
        try:
            with runtime.write() as conn:
                raw = conn.connection.driver_connection
                raw.add_notice_handler(lambda notice: notices.append(notice.message_primary))
                runtime.backend.refresh_planner_statistics(conn, LIVE.all())
        finally:
            runtime.dispose()
    assert notices == []
    assert not analysed(pg_db, "message_state")
    with pg_db.write() as conn:  # the owner refreshes them all
        pg_db.backend.refresh_planner_statistics(conn, LIVE.all())
    assert analysed(pg_db, "message_state")


READ_BATCH = "SELECT * FROM events WHERE position > 1000 ORDER BY position LIMIT 5000"


def _fill_log(db: Database, rows: int) -> None:
    """``rows`` events at once, past the writer (the plan, not the rows, is under test)."""
    with db.write() as conn:
        conn.execute(
            text(
                "INSERT INTO events (type, message_id, occurred_at, recorded_at, source, "
                "payload, dedup_key) SELECT 'message.accepted', 'm' || n, now(), now(), 'test', "
                "'{}'::jsonb, 'k' || n FROM generate_series(1, :rows) AS n"
            ),
            {"rows": rows},
        )


def _read_plan(db: Database) -> str:
    with db.read() as conn:
        return "\n".join(r[0] for r in conn.execute(text(f"EXPLAIN {READ_BATCH}")))


def test_the_owner_gives_a_log_without_statistics_some_and_its_batches_read_by_position(
    db: Database, pg_admin_url: str, tmp_path: Path
) -> None:
    from pipeline.db.tables import events

    if not db.is_postgres:  # SQLite's planner reads by the primary key without statistics
        with db.write() as conn:
            assert db.backend.refresh_log_statistics(conn, events) is False
        return
    _fill_log(db, 100_000)
    before = _read_plan(db)
    assert "Index Scan using pk_events" not in before, before  # scan and sort the log
    with throwaway_role(db, pg_admin_url, "smsrecon_rt") as role:
        url = db.engine.url.render_as_string(hide_password=False)
        assert run_grant(url, tmp_path, role).exit_code == 0
        runtime = as_role(db, role)
        try:
            with runtime.write() as conn:  # owns nothing: not asked, nothing to warn about
                assert runtime.backend.refresh_log_statistics(conn, events) is False
        finally:
            runtime.dispose()
    assert not analysed(db, "events")
    with db.write() as conn:
        assert db.backend.refresh_log_statistics(conn, events) is True
    assert analysed(db, "events")
    assert "Index Scan using pk_events" in _read_plan(db)
    with db.write() as conn:  # fresh statistics are left as they are
        assert db.backend.refresh_log_statistics(conn, events) is False
