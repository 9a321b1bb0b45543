"""Every reader that looks events up by something other than position uses its index.

The read indexes of ``events`` are partial (migration 0013, docs/event-log.md "Indexes"),
and a planner uses a partial index only when it can prove the query's WHERE implies the
index's. So each reader's own statement, captured as it runs, is planned again with
EXPLAIN on each engine and must name its index. On PostgreSQL sequential scans are turned
off first: on a test-sized table a scan is cheaper, and the question here is whether the
index can serve the query at all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from typing import Any

import pytest
from sqlalchemy import Connection, event, insert

from pipeline.db.engine import Database
from pipeline.dispatch.explain import dispatch_section
from pipeline.fx.current import current_rates
from pipeline.prices.record import latest_recorded
from pipeline.projector.explain import AsOf, message_events
from pipeline.projector.tables import projector_correlations
from pipeline.reconcile.importer import invoice_headers


@contextmanager
def captured(db: Database) -> Iterator[list[tuple[str, Any]]]:
    """The SELECTs on ``events`` that run meanwhile, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT") and "FROM events" in statement:
            seen.append((statement, parameters))

    event.listen(db.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(db.engine, "before_cursor_execute", record)


def plan(db: Database, statement: str, parameters: Any) -> str:
    with db.read() as conn:
        if db.is_postgres:
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            rows = conn.exec_driver_sql("EXPLAIN " + statement, parameters).all()
            return "\n".join(row[0] for row in rows)
        rows = conn.exec_driver_sql("EXPLAIN QUERY PLAN " + statement, parameters).all()
        return "\n".join(row[-1] for row in rows)


def _with_correlation(db: Database) -> None:
    with db.write() as conn:
        conn.execute(
            insert(projector_correlations).values(
                carrier="mts", carrier_message_id="abc", message_id="42", part=None, position=1
            )
        )


def _read(reader: Callable[[Connection], object]) -> Callable[[Database], object]:
    def run(db: Database) -> object:
        with db.read() as conn:
            return reader(conn)

    return run


READERS: dict[str, tuple[Callable[[Database], object], list[str]]] = {
    "explain: a message's events and its reports by carrier id": (
        lambda db: (_with_correlation(db), _read(lambda c: message_events(c, "42"))(db)),
        ["ix_events_message_id", "ix_events_carrier_message"],
    ),
    "explain: dispatch attempts": (
        _read(lambda c: dispatch_section(c, "42", AsOf())),
        ["ix_events_message_id"],
    ),
    "fx: the rate that counts": (
        _read(lambda c: current_rates(c, [(date(2026, 1, 5), "EUR", "USD")])),
        ["ix_events_log_types"],
    ),
    "prices: the tables recorded": (_read(latest_recorded), ["ix_events_log_types"]),
    "invoices: the versions of one invoice": (
        lambda db: invoice_headers(db, "INV-1"),
        ["ix_events_log_types"],
    ),
}


@pytest.mark.parametrize("reader", list(READERS))
def test_reader_uses_its_index(db: Database, reader: str) -> None:
    run, indexes = READERS[reader]
    with captured(db) as seen:
        run(db)
    assert len(seen) == 1, seen
    shown = plan(db, *seen[0])
    for index in indexes:
        assert index in shown, f"{reader}: {index} not used by\n{seen[0][0]}\n{shown}"
