"""What people do with deliveries: list them, and ask for a status to be sent again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, or_, select, update

from pipeline.db.engine import Database
from pipeline.dispatch.tables import deliveries
from pipeline.projector.tables import message_state

d = deliveries
ms = message_state
HELD = ("parked", "expired")


def effective_state(now: datetime):  # type: ignore[no-untyped-def]
    """The state a person means: a leased row is in flight, an acknowledged row whose
    payload changed since is pending again, a lease that ran out is pending."""
    return case(
        (and_(d.c.lease_until.is_not(None), d.c.lease_until > now), "in_flight"),
        (
            and_(
                d.c.state.in_(HELD),
                or_(ms.c.payload_hash.is_(None), d.c.held_hash == ms.c.payload_hash),
            ),
            d.c.state,
        ),
        (d.c.acked_hash == ms.c.payload_hash, "acknowledged"),
        else_="pending",
    )


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    message_id: str
    partner: str | None
    state: str
    status: int | None
    version: int
    acked_version: int | None
    attempts: int
    last_status_code: int | None
    last_error: str | None
    held_reason: str | None
    next_attempt_at: datetime | None
    acked_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in self.__slots__:
            value = getattr(self, name)
            out[name] = (
                value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value
            )
        return out


def list_deliveries(
    db: Database, *, now: datetime, state: str | None = None, limit: int | None = None
) -> list[DeliveryRow]:
    current = effective_state(now).label("effective")
    query = (
        select(
            d.c.message_id,
            ms.c.partner,
            current,
            ms.c.status,
            ms.c.version,
            d.c.acked_version,
            d.c.attempts,
            d.c.last_status_code,
            d.c.last_error,
            d.c.held_reason,
            d.c.next_attempt_at,
            d.c.acked_at,
        )
        .join(ms, ms.c.message_id == d.c.message_id)
        .order_by(d.c.message_id)
    )
    if state is not None:
        query = query.where(effective_state(now) == state)
    if limit is not None:
        query = query.limit(limit)
    with db.read() as conn:
        return [DeliveryRow(*row) for row in conn.execute(query).all()]


@dataclass(frozen=True, slots=True)
class ResendResult:
    queued: list[str]
    in_flight: list[str]
    unknown: list[str]


def resend(
    db: Database,
    *,
    now: datetime,
    message_ids: Sequence[str] = (),
    parked: bool = False,
    kind: str | None = None,
) -> ResendResult:
    """Make messages pending now: their current payload is sent at the next dispatch.

    Clears the hold (parked / expired), the backoff and the acknowledged hash (so even an
    acknowledged message is sent again: its *current* payload, never an older one). Rows
    leased by a running dispatcher are left alone and reported. Failure policy: one
    transaction; nothing changes unless it commits.
    """
    with db.write() as conn:
        if parked:
            query = select(d.c.message_id).where(d.c.state.in_(HELD))
            if kind is not None:
                query = query.where(d.c.held_reason == kind)
            wanted = list(conn.scalars(query))
            unknown: list[str] = []
        else:
            found = set(conn.scalars(select(d.c.message_id).where(d.c.message_id.in_(message_ids))))
            wanted = [m for m in message_ids if m in found]
            unknown = [m for m in message_ids if m not in found]
        leased = set(
            conn.scalars(
                select(d.c.message_id).where(
                    d.c.message_id.in_(wanted), d.c.lease_until.is_not(None), d.c.lease_until > now
                )
            )
        )
        queued = [m for m in wanted if m not in leased]
        if queued:
            conn.execute(
                update(d)
                .where(d.c.message_id.in_(queued))
                .values(
                    state="pending",
                    held_hash=None,
                    held_reason=None,
                    acked_hash=None,
                    next_attempt_at=None,
                    first_pending_at=None,
                    failures=0,
                    updated_at=now,
                )
            )
    return ResendResult(queued, sorted(leased), unknown)
