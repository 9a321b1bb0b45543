"""Reading the log in position order from a checkpoint, never skipping a late commit.

Appends are serialised (see ``ordering``), so every committed position is above every
position a reader has already seen: a plain ``position > checkpoint`` read is gap-free.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Row, select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.eventlog.model import StoredEvent


@dataclass(frozen=True, slots=True)
class Batch:
    events: list[StoredEvent]
    #: The checkpoint to pass as ``after`` next time (unchanged when the batch is empty).
    next_checkpoint: int


def row_to_event(row: Row) -> StoredEvent:
    return StoredEvent(
        position=row.position,
        type=row.type,
        message_id=row.message_id,
        carrier=row.carrier,
        carrier_message_id=row.carrier_message_id,
        occurred_at=row.occurred_at,
        recorded_at=row.recorded_at,
        source=row.source,
        payload=row.payload,
        dedup_key=row.dedup_key,
    )


def read(
    db: Database, after: int = 0, limit: int = 1000, types: Sequence[str] | None = None
) -> Batch:
    with db.read() as conn:
        return read_in(conn, after=after, limit=limit, types=types)


def read_in(
    conn: Connection, after: int = 0, limit: int = 1000, types: Sequence[str] | None = None
) -> Batch:
    if limit < 1:
        raise ValueError("limit must be at least 1")
    stmt = select(events).where(events.c.position > after)
    if types:
        stmt = stmt.where(events.c.type.in_(list(types)))
    stmt = stmt.order_by(events.c.position).limit(limit)
    batch = [row_to_event(row) for row in conn.execute(stmt)]
    return Batch(batch, batch[-1].position if batch else after)
