"""Appending to the log: one transaction per batch, duplicates skipped and reported."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from sqlalchemy import Connection, select

from pipeline.db.backend import Backend, backend_of
from pipeline.db.codec import RowCodec, row_codec
from pipeline.db.driver import driver_rows
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
    # Appends are serialised (see ordering), so every row above the highest position seen
    # now is one of ours: reading them back gives each stored key its position without
    # RETURNING, which lets the driver's own executemany do the insert (psycopg pipelines
    # it; SQLAlchemy's multi-VALUES RETURNING costs more than the insert itself).
    # Plain SQL through the driver's own cursor: these run once per transaction on the
    # ingest hot path, where SQLAlchemy's statement and result set-up cost more than the
    # queries themselves.
    backend = backend_of(conn)
    before = driver_rows(conn, "SELECT max(position) FROM events")[0][0] or 0
    # One recorded time for the batch, encoded once.
    recorded_at = backend.bind_time(utc_now())
    encode = _codec(backend).encode_into
    rows = [encode(_values(e, recorded_at)) for e in unique.values()]
    # Stored keys are skipped (the backend's ``insert_new``); appends are serialised, so
    # none can be stored between its look and the insert.
    backend.insert_new(conn, events, rows, "dedup_key")
    read_back = backend.driver_sql("SELECT dedup_key, position FROM events WHERE position > :p")
    stored = dict(driver_rows(conn, read_back, {"p": before}))
    appended = []
    for key, event in unique.items():
        if key in stored:
            appended.append((stored[key], event))
        else:
            duplicates.append(event)
    return AppendResult(appended, duplicates)


#: The columns an append encodes per event (``position`` is the log's own; ``recorded_at``
#: is one value for the whole batch).
_COLUMNS = (
    "type", "message_id", "carrier", "carrier_message_id", "occurred_at", "source", "payload",
    "dedup_key",
)  # fmt: skip


@lru_cache(maxsize=2)
def _codec(backend: Backend) -> RowCodec:
    return row_codec(backend, events, _COLUMNS)


def _values(e: NewEvent, recorded_at: object) -> dict[str, object]:
    return {
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


def existing_keys(conn: Connection, keys: Sequence[str]) -> set[str]:
    """Which of these dedup keys are already stored (for callers that want to ask first)."""
    if not keys:
        return set()
    return set(conn.scalars(select(events.c.dedup_key).where(events.c.dedup_key.in_(keys))))
