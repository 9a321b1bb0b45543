"""Appending to the log: one transaction per batch, duplicates skipped and reported."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection, select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.db.times import sqlite_time_text
from pipeline.eventlog.model import NewEvent, utc_now
from pipeline.eventlog.ordering import serialise_appends


@dataclass(frozen=True, slots=True)
class AppendResult:
    #: (position, event) for each event stored by this call, in input order.
    appended: list[tuple[int, NewEvent]]
    #: Events whose dedup_key was already in the log (or earlier in the same batch).
    duplicates: list[NewEvent]

    @property
    def positions(self) -> list[int]:
        return [position for position, _ in self.appended]


def append(db: Database, batch: Iterable[NewEvent]) -> AppendResult:
    """Write a batch in one transaction; all of it is stored, or none of it."""
    with db.write() as conn:
        return append_in(conn, batch)


def append_in(conn: Connection, batch: Iterable[NewEvent]) -> AppendResult:
    """Append inside the caller's write transaction (for writers that also update state).

    Failure policy: nothing is visible until the caller commits; if the process dies before
    that, the whole batch is rolled back and the sender (who has had no answer) sends again.
    """
    unique: dict[str, NewEvent] = {}
    duplicates: list[NewEvent] = []
    for event in batch:
        assert event.dedup_key is not None
        if event.dedup_key in unique:
            duplicates.append(event)
        else:
            unique[event.dedup_key] = event
    if not unique:
        return AppendResult([], duplicates)

    serialise_appends(conn)
    # Appends are serialised (see ordering), so every row above the highest position seen
    # now is one of ours: reading them back gives each stored key its position without
    # RETURNING, which lets the driver's own executemany do the insert (psycopg pipelines
    # it; SQLAlchemy's multi-VALUES RETURNING costs more than the insert itself).
    # Plain SQL through the driver: these run once per transaction on the ingest hot path,
    # where SQLAlchemy's statement compilation and result processing cost more than the
    # queries themselves.
    before = conn.exec_driver_sql("SELECT max(position) FROM events").scalar() or 0
    sqlite = conn.dialect.name == "sqlite"
    recorded_at: object = utc_now()
    if sqlite:
        # SQLite's log refuses any insert of a stored key (migration 0005: that is how it
        # stops REPLACE), so stored keys are left out here; appends are serialised, so
        # none can be stored between this look and the insert.
        stored_already = _stored_keys_sqlite(conn, list(unique))
        recorded_at = sqlite_time_text(recorded_at)  # type: ignore[arg-type]
        rows = [
            _row_for_sqlite(e, recorded_at)
            for key, e in unique.items()
            if key not in stored_already
        ]
    else:
        rows = [_row_for_postgres(e, recorded_at) for e in unique.values()]
    if rows:
        conn.exec_driver_sql(_insert_sql(conn.dialect.name), rows)
    read_back = "SELECT dedup_key, position FROM events WHERE position > " + (
        "?" if sqlite else "%s"
    )
    stored = dict(conn.exec_driver_sql(read_back, (before,)).all())
    appended = []
    for key, event in unique.items():
        if key in stored:
            appended.append((stored[key], event))
        else:
            duplicates.append(event)
    return AppendResult(appended, duplicates)


_COLUMNS = (
    "type, message_id, carrier, carrier_message_id, occurred_at, recorded_at, source, "
    "payload, dedup_key"
)


@lru_cache(maxsize=2)
def _insert_sql(dialect: str) -> str:
    if dialect == "sqlite":
        values = ", ".join(["?"] * 9)
    else:
        values = "%s, %s, %s, %s, %s, %s, %s, %s::jsonb, %s"
    return f"INSERT INTO events ({_COLUMNS}) VALUES ({values}) ON CONFLICT (dedup_key) DO NOTHING"


#: Keys per ``IN (...)`` lookup, well under SQLite's limit on bound parameters.
_KEYS_PER_LOOKUP = 500


def _stored_keys_sqlite(conn: Connection, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), _KEYS_PER_LOOKUP):
        chunk = keys[start : start + _KEYS_PER_LOOKUP]
        marks = ", ".join(["?"] * len(chunk))
        sql = f"SELECT dedup_key FROM events WHERE dedup_key IN ({marks})"
        found.update(key for (key,) in conn.exec_driver_sql(sql, tuple(chunk)))
    return found


def _row_for_sqlite(e: NewEvent, recorded_at: object) -> tuple[object, ...]:
    return (
        e.type,
        e.message_id,
        e.carrier,
        e.carrier_message_id,
        sqlite_time_text(e.occurred_at),
        recorded_at,
        e.source,
        _dumps(e.payload),
        e.dedup_key,
    )


def _row_for_postgres(e: NewEvent, recorded_at: object) -> tuple[object, ...]:
    return (
        e.type,
        e.message_id,
        e.carrier,
        e.carrier_message_id,
        e.occurred_at,
        recorded_at,
        e.source,
        _dumps(e.payload),
        e.dedup_key,
    )


def _dumps(payload: dict[str, object]) -> str:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":"))


def existing_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Which of these dedup keys are already stored (for callers that want to ask first)."""
    if not keys:
        return set()
    return set(conn.scalars(select(events.c.dedup_key).where(events.c.dedup_key.in_(keys))))
