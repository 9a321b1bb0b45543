"""Reading mismatches: for the CLI, ``explain`` and the reports."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from pipeline.mismatches.kinds import OPEN
from pipeline.mismatches.table import mismatches


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
    #: The money the row is about (what finance would recover or lose), exact, and its
    #: currency; None when it names no money (or, for a partner's circuit, several
    #: currencies: ``detail["at_stake_by_currency"]`` then).
    amount_at_stake: Decimal | None = None
    amount_currency: str | None = None
    #: The invoice an invoice mismatch is about.
    invoice_id: str | None = None


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


def get_mismatch(conn: Connection, mismatch_id: int) -> Mismatch:
    """One mismatch by id; ``MismatchError`` when there is none."""
    row = conn.execute(select(mismatches).where(mismatches.c.id == mismatch_id)).first()
    if row is None:
        raise MismatchError(f"no mismatch with id {mismatch_id}")
    return row_to_mismatch(row)


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
        amount_at_stake=row.amount_at_stake,
        amount_currency=row.amount_currency,
        invoice_id=row.invoice_id,
    )
