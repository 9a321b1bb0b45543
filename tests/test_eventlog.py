"""The event log's promises: append-only, de-duplicated, faithful, and read without gaps."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from pipeline.db.engine import Database
from pipeline.eventlog import NewEvent, append, read
from pipeline.eventlog.model import EventError

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def event(n: int = 0, **overrides) -> NewEvent:  # type: ignore[no-untyped-def]
    fields = {
        "type": "carrier.status",
        "occurred_at": T0 + timedelta(seconds=n),
        "source": "test",
        "payload": {"n": n},
        "carrier": "mts",
        "carrier_message_id": f"c{n}",
    }
    fields.update(overrides)
    return NewEvent(**fields)


def test_append_returns_positions_in_input_order(db: Database) -> None:
    result = append(db, [event(i) for i in range(5)])
    assert len(result.appended) == 5
    assert result.positions == sorted(result.positions)
    assert [e.payload["n"] for _, e in result.appended] == [0, 1, 2, 3, 4]
    assert result.duplicates == []


@pytest.mark.parametrize("statement", ["UPDATE events SET type = 'x'", "DELETE FROM events"])
def test_update_and_delete_are_refused_by_the_database(db: Database, statement: str) -> None:
    append(db, [event(1)])
    with pytest.raises(DBAPIError, match="append-only"), db.write() as conn:
        conn.execute(text(statement))
    assert [e.type for e in read(db).events] == ["carrier.status"]


def test_truncate_is_refused_on_postgresql(pg_db: Database) -> None:
    # SQLite has no TRUNCATE (its DELETE is covered above).
    append(pg_db, [event(1)])
    with pytest.raises(DBAPIError, match="append-only"), pg_db.write() as conn:
        conn.execute(text("TRUNCATE events"))
    assert len(read(pg_db).events) == 1


def test_same_dedup_key_is_stored_once_and_reported_as_duplicate(db: Database) -> None:
    first = append(db, [event(1), event(2)])
    again = append(db, [event(2), event(3), event(3)])
    assert len(first.appended) == 2
    assert [e.payload["n"] for _, e in again.appended] == [3]
    assert sorted(e.payload["n"] for e in again.duplicates) == [2, 3]
    assert [e.payload["n"] for e in read(db).events] == [1, 2, 3]


def test_explicit_dedup_key_wins_over_content(db: Database) -> None:
    append(db, [event(1, dedup_key="dlr:mts:c1:DELIVRD")])
    result = append(db, [event(99, dedup_key="dlr:mts:c1:DELIVRD")])
    assert result.appended == [] and len(result.duplicates) == 1


def test_payload_round_trips_unicode_nesting_and_decimals(db: Database) -> None:
    payload = {
        "text": "Привет, Anna! €5 — 😀",
        "nested": {"list": [1, "two", {"three": None}], "flag": True},
        "cost": Decimal("0.03330000"),
    }
    append(db, [event(1, payload=payload)])
    stored = read(db).events[0]
    assert stored.payload == {
        "text": "Привет, Anna! €5 — 😀",
        "nested": {"list": [1, "two", {"three": None}], "flag": True},
        "cost": "0.03330000",
    }
    assert Decimal(stored.payload["cost"]) == Decimal("0.0333")


def test_times_are_stored_and_returned_in_utc(db: Database) -> None:
    moscow = timezone(timedelta(hours=3))
    append(db, [event(1, occurred_at=datetime(2026, 1, 15, 13, 30, tzinfo=moscow))])
    stored = read(db).events[0]
    assert stored.occurred_at == T0
    assert stored.occurred_at.utcoffset() == timedelta(0)
    assert stored.recorded_at.tzinfo is not None


def test_an_unknown_event_type_is_refused_before_storage() -> None:
    with pytest.raises(EventError, match="type: unknown event type 'Bad Type'"):
        event(1, type="Bad Type")


def test_floats_and_naive_times_are_refused_before_storage() -> None:
    with pytest.raises(EventError, match=r"payload\.cost: floats"):
        event(1, payload={"cost": 0.1})
    with pytest.raises(EventError, match="occurred_at"):
        event(1, occurred_at=datetime(2026, 1, 1))


def test_read_pages_through_the_log_with_checkpoints(db: Database) -> None:
    append(db, [event(i) for i in range(25)])
    seen, after = [], 0
    while True:
        batch = read(db, after=after, limit=10)
        if not batch.events:
            break
        seen += [e.payload["n"] for e in batch.events]
        after = batch.next_checkpoint
    assert seen == list(range(25))
    assert read(db, after=after).next_checkpoint == after


def test_read_can_filter_by_type(db: Database) -> None:
    append(db, [event(1), event(2, type="message.accepted"), event(3)])
    batch = read(db, types=["message.accepted"])
    assert [e.payload["n"] for e in batch.events] == [2]


def test_payload_values_are_converted_to_plain_json_or_refused_with_their_path() -> None:
    import enum

    from pipeline.eventlog.model import to_json_value

    class Kind(enum.StrEnum):
        DLR = "dlr"

    class Code(enum.IntEnum):
        DELIVERED = 1

    converted = to_json_value(
        {"kind": Kind.DLR, "code": Code.DELIVERED, "list": (1, Decimal("2.50")),
         "at": datetime(2026, 1, 15, 13, 30, tzinfo=timezone(timedelta(hours=3)))}
    )  # fmt: skip
    assert converted == {
        "kind": "dlr",
        "code": 1,
        "list": [1, "2.50"],
        "at": "2026-01-15T10:30:00Z",
    }
    assert type(converted["kind"]) is str and type(converted["code"]) is int
    with pytest.raises(EventError, match=r"payload\.raw\.parts\[1\]: floats"):
        to_json_value({"raw": {"parts": [1, 2.0]}})
    with pytest.raises(EventError, match="object keys must be strings"):
        to_json_value({"raw": {1: "x"}})
    with pytest.raises(EventError, match=r"payload\.x: set is not a JSON value"):
        to_json_value({"x": {1}})
