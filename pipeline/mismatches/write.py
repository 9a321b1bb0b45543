"""Every write to the ``mismatches`` table: open, refresh, update detail, resolve, acknowledge.

open -> resolved (the cause went away; set by whoever opened it) or acknowledged (a person
closed it with a note). At most one row per (subject, kind, origin) is open at a time; ``subject``
is the message id when there is one, else a name for what the mismatch is about (for
instance ``carrier:mts:abc123`` for a report no message claims). The projector and the
dispatcher both call these functions inside their own write transactions, so a mismatch
opens or resolves atomically with the state change that caused it.

A money mismatch names the money at stake in its detail, ``amount_at_stake`` and
``currency`` (decimal text), and its invoice as ``invoice_id``; ``open_mismatch`` copies
them into their columns (the amount also as integer 10^-9 units), so that SQL can sum and
filter them exactly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Table, delete, insert, literal, select, update

from pipeline.domain.money import to_nano
from pipeline.mismatches.kinds import ACKNOWLEDGED, OPEN, ORIGINS, PROJECTOR_ORIGINS, RESOLVED
from pipeline.mismatches.read import MismatchError
from pipeline.mismatches.table import mismatches


def _subject(message_id: str | None, subject: str | None) -> str:
    if subject:
        return subject
    if message_id:
        return message_id
    raise MismatchError("a mismatch needs a message_id or a subject")


def money_columns(detail: Mapping[str, Any]) -> dict[str, Any]:
    """The columns a detail's money fields fill (all NULL when it names no money)."""
    amount = detail.get("amount_at_stake")
    invoice = detail.get("invoice_id")
    value = None if amount is None else Decimal(str(amount))
    return {
        "amount_at_stake": value,
        "amount_at_stake_nano": None if value is None or not value.is_finite() else to_nano(value),
        "amount_currency": detail.get("currency") if amount is not None else None,
        "invoice_id": str(invoice)[:80] if invoice is not None else None,
    }


def _same(table: Table, key: str, kind: str, origin: str | None) -> list[Any]:
    """The WHERE of the open (subject, kind[, origin]) row."""
    where = [table.c.subject == key, table.c.kind == kind, table.c.status == OPEN]
    if origin is not None:
        where.append(table.c.origin == origin)
    return where


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
    money = money_columns(detail)
    existing = conn.execute(select(table.c.id).where(*_same(table, key, kind, origin))).scalar()
    if existing is not None:
        values: dict[str, Any] = {"detail": dict(detail), **money}
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
            **money,
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
    origin: str | None = None,
    table: Table = mismatches,
) -> bool:
    """Resolve the open (subject, kind) mismatch (of ``origin``, when given); False when
    none was open."""
    key = _subject(message_id, subject)
    values: dict[str, Any] = {"status": RESOLVED, "resolved_at": now}
    if position is not None:
        values["last_position"] = position
    result = conn.execute(update(table).where(*_same(table, key, kind, origin)).values(**values))
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
    closed_here = row.origin not in PROJECTOR_ORIGINS
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


def update_detail(
    conn: Connection,
    *,
    subject: str,
    kind: str,
    detail: Mapping[str, Any],
    position: int,
    origin: str | None = None,
    table: Table = mismatches,
) -> None:
    """Replace the detail of the open (subject, kind) row: its cause changed, but is still there."""
    conn.execute(
        update(table)
        .where(*_same(table, subject, kind, origin))
        .values(detail=dict(detail), last_position=position, **money_columns(detail))
    )


def apply_acknowledgement(
    conn: Connection, payload: Mapping[str, Any], *, at: datetime, table: Table = mismatches
) -> None:
    """Close a projector-owned row as a ``mismatch.acknowledged`` event's payload names it.

    The projector calls this when it applies the event, live and on replay alike: it is the
    only way a projector-owned row gets acknowledged (``acknowledge_mismatch`` only records
    the event for such rows). The row is found by (subject, kind, first_position), which
    survive a rebuild where ids do not.
    """
    if payload.get("origin") not in PROJECTOR_ORIGINS:
        return
    if not payload.get("subject") or not payload.get("kind"):
        return
    row = conn.execute(
        select(table.c.id, table.c.status).where(
            table.c.subject == payload["subject"],
            table.c.kind == payload["kind"],
            table.c.origin == payload["origin"],
            table.c.first_position == payload.get("first_position"),
        )
    ).first()
    if row is None or row.status == ACKNOWLEDGED:
        return
    conn.execute(
        update(table)
        .where(table.c.id == row.id)
        .values(status=ACKNOWLEDGED, resolved_at=at, note=payload.get("note"))
    )


def resolve_for_messages(
    conn: Connection,
    message_ids: Sequence[str],
    *,
    origin: str,
    kinds: Sequence[str],
    now: datetime,
) -> None:
    """Resolve every open row of ``origin`` with one of ``kinds`` about these messages.

    Runs for every group of acknowledgements the dispatcher records, and usually none is
    open at all: one indexed probe spares the lookup by id.
    """
    open_any = conn.scalar(
        select(literal(1))
        .where(
            mismatches.c.status == OPEN,
            mismatches.c.kind.in_(kinds),
            mismatches.c.origin == origin,
            mismatches.c.message_id.is_not(None),
        )
        .limit(1)
    )
    if open_any is None:
        return
    still_open = conn.execute(
        select(mismatches.c.message_id, mismatches.c.kind).where(
            mismatches.c.message_id.in_(list(message_ids)),
            mismatches.c.origin == origin,
            mismatches.c.status == OPEN,
            mismatches.c.kind.in_(kinds),
        )
    ).all()
    for message_id, kind in still_open:
        resolve_mismatch(conn, message_id=message_id, kind=kind, now=now)


def replace_rebuilt(conn: Connection, rebuilt: Table, *, table: Table = mismatches) -> None:
    """``replay --rebuild``: the projector's rows become those rebuilt in ``rebuilt`` (a copy
    of this table the rebuild filled); the dispatcher's rows stay as they are.

    Rows are copied in the rebuild's id order, so the new ids keep the order they were
    opened in. Runs in the caller's transaction: the swap is all or nothing.
    """
    conn.execute(delete(table).where(table.c.origin.in_(PROJECTOR_ORIGINS)))
    names = [c.name for c in table.c if c.name != "id"]
    query = select(*[rebuilt.c[n] for n in names]).order_by(rebuilt.c.id)
    conn.execute(insert(table).from_select(names, query))
