"""Appending to the log: one transaction per batch, duplicates skipped and reported."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, select
from sqlalchemy.dialects import postgresql, sqlite

from pipeline.db.engine import Database
from pipeline.db.tables import events
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
    recorded_at = utc_now()
    rows = [
        {
            "type": e.type,
            "message_id": e.message_id,
            "carrier": e.carrier,
            "carrier_message_id": e.carrier_message_id,
            "occurred_at": e.occurred_at,
            "recorded_at": recorded_at,
            "source": e.source,
            "payload": e.payload,
            "dedup_key": e.dedup_key,
        }
        for e in unique.values()
    ]
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stmt = (
        dialect.insert(events)
        .on_conflict_do_nothing(index_elements=["dedup_key"])
        .returning(events.c.position, events.c.dedup_key)
    )
    stored = {key: pos for pos, key in conn.execute(stmt, rows).all()}
    appended = []
    for key, event in unique.items():
        if key in stored:
            appended.append((stored[key], event))
        else:
            duplicates.append(event)
    return AppendResult(appended, duplicates)


def existing_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Which of these dedup keys are already stored (for callers that want to ask first)."""
    if not keys:
        return set()
    return set(conn.scalars(select(events.c.dedup_key).where(events.c.dedup_key.in_(keys))))
