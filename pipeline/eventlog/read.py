"""Reading the log in position order from a checkpoint, never skipping a late commit.

Appends are serialised (see ``ordering``), so every committed position is above every
position a reader has already seen: a plain ``position > checkpoint`` read is gap-free.

A row that cannot be decoded (see ``UnreadableEvent``) fails the typed query; the same rows
are then read again with times and payload as text and decoded one by one
(``read_rows_leniently``), so one such row never stops a reader.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Row, Text, cast, select
from sqlalchemy.exc import DataError

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.eventlog.model import StoredEvent, UnreadableEvent, describe_error
from pipeline.times import parse_stored_time

#: What a row that cannot be decoded raises from a typed query: a time the column type
#: cannot parse (SQLite), one the driver cannot load (PostgreSQL ``infinity``, BC, year
#: 10000+), a payload that is not JSON, or one nested deeper than the JSON decoder
#: recurses (``RecursionError``; only raw SQL can store one: ingest bounds the depth).
DECODE_ERRORS = (ValueError, TypeError, OverflowError, DataError, RecursionError)


@dataclass(frozen=True, slots=True)
class Batch:
    events: list[StoredEvent | UnreadableEvent]
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
    try:
        batch: list[StoredEvent | UnreadableEvent] = [
            row_to_event(row) for row in conn.execute(stmt)
        ]
    except DECODE_ERRORS:
        where = events.c.position > after
        if types:
            where = where & events.c.type.in_(list(types))
        batch = read_rows_leniently(conn, where, limit=limit)
    return Batch(batch, batch[-1].position if batch else after)


#: The columns with the times and the payload as stored text (a CAST both engines know).
_TEXT_COLUMNS = (
    events.c.position,
    events.c.type,
    events.c.message_id,
    events.c.carrier,
    events.c.carrier_message_id,
    cast(events.c.occurred_at, Text).label("occurred_at"),
    cast(events.c.recorded_at, Text).label("recorded_at"),
    events.c.source,
    cast(events.c.payload, Text).label("payload"),
    events.c.dedup_key,
)


def read_rows_leniently(
    conn: Connection, where: Any, *, limit: int | None = None
) -> list[StoredEvent | UnreadableEvent]:
    """The rows matching ``where`` in position order, each decoded on its own."""
    stmt = select(*_TEXT_COLUMNS).where(where).order_by(events.c.position)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [decode_text_row(*row) for row in conn.execute(stmt)]


def decode_text_row(*row: Any) -> StoredEvent | UnreadableEvent:
    """A row read as text: the event, or what it holds and why it cannot be one."""
    position, type_, mid, carrier, cmid, occurred, recorded, source, payload, key = row
    decoded: Any = payload
    try:
        decoded = json.loads(payload) if isinstance(payload, str) else payload
        if type(decoded) is not dict:
            raise ValueError(f"payload is a JSON {type(decoded).__name__}, not an object")
        return StoredEvent(
            position,
            type_,
            mid,
            carrier,
            cmid,
            parse_stored_time(occurred),
            parse_stored_time(recorded),
            source,
            decoded,
            key,
        )
    except Exception as exc:
        return UnreadableEvent(
            position,
            type_,
            mid,
            carrier,
            cmid,
            None if occurred is None else str(occurred),
            None if recorded is None else str(recorded),
            source,
            decoded,
            key,
            describe_error(exc),
        )
