"""Mismatches: problems found in the data, each with a lifecycle a person can follow.

open -> resolved (the cause went away; set by whoever opened it) or acknowledged (a person
closed it with a note). At most one row per (subject, kind) is open at a time; ``subject``
is the message id when there is one, else a name for what the mismatch is about (for
instance ``carrier:mts:abc123`` for a report no message claims). The projector and the
dispatcher both call these functions inside their own write transactions, so a mismatch
opens or resolves atomically with the state change that caused it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Table, select, update

from pipeline.projector.tables import mismatches

OPEN = "open"
RESOLVED = "resolved"
ACKNOWLEDGED = "acknowledged"
ORIGINS = ("projector", "dispatcher")


class MismatchError(ValueError):
    """A mismatch operation that cannot be done (unknown id, bad origin)."""


@dataclass(frozen=True, slots=True)
class Mismatch:
    id: int
    message_id: str | None
    subject: str
    kind: str
    origin: str
    detail: dict[str, Any]
    status: str
    opened_at: datetime
    resolved_at: datetime | None
    first_position: int | None
    last_position: int | None
    note: str | None


def _subject(message_id: str | None, subject: str | None) -> str:
    if subject:
        return subject
    if message_id:
        return message_id
    raise MismatchError("a mismatch needs a message_id or a subject")


def open_mismatch(
    conn: Connection,
    *,
    message_id: str | None,
    kind: str,
    origin: str,
    detail: Mapping[str, Any],
    now: datetime,
    position: int | None = None,
    subject: str | None = None,
    table: Table = mismatches,
) -> int:
    """Open a mismatch, or refresh the open one for (subject, kind); return its id.

    Idempotent: calling it again while the row is open only updates ``detail`` and
    ``last_position``. Failure policy: it runs in the caller's transaction; if the caller
    rolls back, neither the open nor the refresh happened.
    """
    if origin not in ORIGINS:
        raise MismatchError(f"origin must be one of {ORIGINS}, got {origin!r}")
    key = _subject(message_id, subject)
    existing = conn.execute(
        select(table.c.id).where(
            table.c.subject == key, table.c.kind == kind, table.c.status == OPEN
        )
    ).scalar()
    if existing is not None:
        values: dict[str, Any] = {"detail": dict(detail)}
        if position is not None:
            values["last_position"] = position
        conn.execute(update(table).where(table.c.id == existing).values(**values))
        return int(existing)
    result = conn.execute(
        table.insert().values(
            message_id=message_id,
            subject=key,
            kind=kind,
            origin=origin,
            detail=dict(detail),
            status=OPEN,
            opened_at=now,
            resolved_at=None,
            first_position=position,
            last_position=position,
            note=None,
        )
    )
    return int(result.inserted_primary_key[0])


def resolve_mismatch(
    conn: Connection,
    *,
    message_id: str | None,
    kind: str,
    now: datetime,
    position: int | None = None,
    subject: str | None = None,
    table: Table = mismatches,
) -> bool:
    """Resolve the open (subject, kind) mismatch; False when none was open."""
    key = _subject(message_id, subject)
    values: dict[str, Any] = {"status": RESOLVED, "resolved_at": now}
    if position is not None:
        values["last_position"] = position
    result = conn.execute(
        update(table)
        .where(table.c.subject == key, table.c.kind == kind, table.c.status == OPEN)
        .values(**values)
    )
    return result.rowcount > 0


def acknowledge_mismatch(
    conn: Connection, mismatch_id: int, *, who: str, note: str, now: datetime
) -> bool:
    """A person closes a mismatch with a note, recorded as a ``mismatch.acknowledged`` event.

    The event names the row by (subject, kind, first_position) as well as by id, because ids
    do not survive ``replay --rebuild`` but those do. A projector-owned row is changed only
    by the projector when it applies this event (so ``replay --verify`` never sees a row
    ahead of the projector's checkpoint); a dispatcher-owned row is changed here. Returns
    True when the row is already closed, False when the next projection closes it.
    """
    from pipeline.eventlog import NewEvent, append_in

    row = conn.execute(select(mismatches).where(mismatches.c.id == mismatch_id)).first()
    if row is None:
        raise MismatchError(f"no mismatch with id {mismatch_id}")
    if row.status != OPEN:
        raise MismatchError(f"mismatch {mismatch_id} is {row.status} already, not open")
    closed_here = row.origin != "projector"
    if closed_here:
        conn.execute(
            update(mismatches)
            .where(mismatches.c.id == mismatch_id)
            .values(status=ACKNOWLEDGED, resolved_at=now, note=note)
        )
    append_in(
        conn,
        [
            NewEvent(
                type="mismatch.acknowledged",
                occurred_at=now,
                source="cli:mismatch-acknowledge",
                message_id=row.message_id,
                payload={
                    "mismatch_id": int(mismatch_id),
                    "who": who,
                    "note": note,
                    "subject": row.subject,
                    "kind": row.kind,
                    "origin": row.origin,
                    "first_position": row.first_position,
                },
                dedup_key=f"ack:{mismatch_id}:{now.isoformat()}",
            )
        ],
    )
    return closed_here


def open_mismatches(
    conn: Connection, message_id: str | None = None, kind: str | None = None
) -> list[Mismatch]:
    """The open mismatches, optionally for one message and/or one kind, oldest first."""
    stmt = select(mismatches).where(mismatches.c.status == OPEN)
    if message_id is not None:
        stmt = stmt.where(mismatches.c.message_id == message_id)
    if kind is not None:
        stmt = stmt.where(mismatches.c.kind == kind)
    return [row_to_mismatch(r) for r in conn.execute(stmt.order_by(mismatches.c.id))]


def list_mismatches(
    conn: Connection,
    *,
    status: str | None = OPEN,
    kind: str | None = None,
    message_id: str | None = None,
    limit: int | None = None,
) -> list[Mismatch]:
    """Mismatches by status (None: all), kind and message, oldest first."""
    stmt = select(mismatches)
    if status is not None:
        stmt = stmt.where(mismatches.c.status == status)
    if kind is not None:
        stmt = stmt.where(mismatches.c.kind == kind)
    if message_id is not None:
        stmt = stmt.where(mismatches.c.message_id == message_id)
    stmt = stmt.order_by(mismatches.c.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [row_to_mismatch(r) for r in conn.execute(stmt)]


def mismatches_for(conn: Connection, message_id: str) -> list[Mismatch]:
    """Every mismatch of a message, whatever its status, oldest first (for ``explain``)."""
    stmt = select(mismatches).where(mismatches.c.message_id == message_id)
    return [row_to_mismatch(r) for r in conn.execute(stmt.order_by(mismatches.c.id))]


def row_to_mismatch(row: Any) -> Mismatch:
    return Mismatch(
        id=int(row.id),
        message_id=row.message_id,
        subject=row.subject,
        kind=row.kind,
        origin=row.origin,
        detail=dict(row.detail or {}),
        status=row.status,
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        first_position=row.first_position,
        last_position=row.last_position,
        note=row.note,
    )
