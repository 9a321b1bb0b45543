"""Every year 1-9999 round-trips through the log on both engines, in time order."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append, read
from pipeline.projector.store import read_events
from pipeline.times import parse_sqlite_time, sqlite_time_text

YEARS = [1, 9, 99, 999, 1000, 1999, 2026, 9999]


def _event(year: int) -> NewEvent:
    return NewEvent(
        "message.accepted",
        datetime(year, 6, 1, 12, 30, 15, 123456, tzinfo=UTC),
        "test",
        {"partner": "default"},
        message_id=f"y{year}",
    )


def test_every_year_round_trips_through_the_log_and_the_projector_reader(db: Database) -> None:
    append(db, [_event(y) for y in YEARS])
    expected = [datetime(y, 6, 1, 12, 30, 15, 123456, tzinfo=UTC) for y in YEARS]
    assert [e.occurred_at for e in read(db, limit=100).events] == expected
    with db.read() as conn:
        assert [e.occurred_at for e in read_events(conn, after=0, limit=100)] == expected


def test_stored_times_sort_in_time_order(db: Database) -> None:
    append(db, [_event(y) for y in reversed(YEARS)])
    with db.read() as conn:
        ids = conn.execute(text("SELECT message_id FROM events ORDER BY occurred_at")).scalars()
        assert list(ids) == [f"y{y}" for y in YEARS]


def test_sqlite_text_has_a_four_digit_year() -> None:
    assert sqlite_time_text(datetime(999, 6, 1, tzinfo=UTC)) == "0999-06-01 00:00:00.000000"
    assert sqlite_time_text(datetime(1, 1, 1, tzinfo=UTC)) == "0001-01-01 00:00:00.000000"


@pytest.mark.parametrize(
    ("stored", "expected"),
    [
        ("999-06-01 00:00:00", datetime(999, 6, 1, tzinfo=UTC)),
        ("999-06-01 00:00:00.5", datetime(999, 6, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        ("1-01-01 00:00:00.000000", datetime(1, 1, 1, tzinfo=UTC)),
        ("0999-06-01 03:00:00+03:00", datetime(999, 6, 1, tzinfo=UTC)),
        ("2026-11-30 10:00:00.000001", datetime(2026, 11, 30, 10, 0, 0, 1, tzinfo=UTC)),
    ],
)
def test_texts_an_older_version_stored_still_read(stored: str, expected: datetime) -> None:
    assert parse_sqlite_time(stored) == expected


@pytest.mark.parametrize("stored", ["", "yesterday", "0000-01-01 00:00:00", "2026-13-01 00:00"])
def test_a_text_that_names_no_time_is_a_value_error(stored: str) -> None:
    with pytest.raises(ValueError):
        parse_sqlite_time(stored)
