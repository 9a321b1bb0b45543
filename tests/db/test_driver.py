"""``driver_rows`` answers exactly as ``exec_driver_sql`` does, rows and errors, on both
engines: it is the append's cheaper way to run the same reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import exc

from pipeline.db.driver import driver_rows
from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append

T0 = datetime(2026, 1, 15, 10, 5, tzinfo=UTC)


def _events(n: int) -> list[NewEvent]:
    return [
        NewEvent(
            type="fx.rate", occurred_at=T0 + timedelta(seconds=i), source="s", payload={"i": i}
        )
        for i in range(n)
    ]


@pytest.mark.parametrize(
    ("sql", "params"),
    [
        ("SELECT max(position) FROM events", None),
        ("SELECT dedup_key, position FROM events WHERE position > :p", {"p": 2}),
        ("SELECT dedup_key, position FROM events WHERE position > :p", {"p": 99}),
        ("SELECT type, count(*) FROM events GROUP BY type", None),
    ],
)
def test_rows_as_exec_driver_sql_gives_them(
    db: Database, sql: str, params: dict[str, int] | None
) -> None:
    append(db, _events(5))
    sql = db.backend.driver_sql(sql)
    with db.read() as conn:
        plain = [tuple(row) for row in conn.exec_driver_sql(sql, params or {}).all()]
        fast = driver_rows(conn, sql, params)
    assert fast == plain


def test_errors_are_the_same_sqlalchemy_classes(db: Database) -> None:
    for sql in ("SELECT max(position) FROM no_such_table", "SELECT broken syntax FROM"):
        with db.read() as conn, pytest.raises(exc.DBAPIError) as plain:
            conn.exec_driver_sql(sql)
        with db.read() as conn, pytest.raises(exc.DBAPIError) as fast:
            driver_rows(conn, sql)
        assert type(fast.value) is type(plain.value)
        assert type(fast.value.orig) is type(plain.value.orig)
