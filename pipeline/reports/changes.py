"""What the log learned after a run's pinned position, within the run's scope.

Every event after the position that concerns a message the run covers (accepted in its
period, of its partner and carrier): late reports, submissions, invoice lines,
acknowledgements; plus invoice headers and closings of its carrier, and acknowledged
mismatches. A DLR that names only the carrier's id is matched through the live correlations.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, select, tuple_

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.projector.store import LIVE
from pipeline.reports.model import ReportParams

#: Events that change a message's row.
MESSAGE_TYPES = (
    "message.accepted",
    "message.refused",
    "carrier.submitted",
    "carrier.status",
    "carrier.invoiced",
    "dispatch.acknowledged",
)
#: Events about invoices or mismatches rather than one message.
OTHER_TYPES = ("carrier.invoice", "carrier.invoice_closed", "mismatch.acknowledged", "fx.rate")
#: The payload fields shown per type (what the event says changed); others: all scalars.
SHOWN = {
    "carrier.status": ("status", "raw_status", "error_code", "parts", "cost", "currency"),
    "carrier.invoiced": ("invoice_id", "version", "line", "parts", "cost", "currency"),
    "carrier.submitted": ("parts",),
    "dispatch.acknowledged": ("status", "payment_sum", "currency_iso", "parts_amount"),
    "carrier.invoice": ("invoice_id", "version", "total", "lines"),
    "carrier.invoice_closed": ("invoice_id",),
    "fx.rate": ("day", "base", "quote", "rate"),
}
PAGE = 1000


@dataclass(frozen=True)
class Change:
    position: int
    type: str
    message_id: str | None
    fields: dict[str, Any]

    def line(self) -> str:
        shown = ", ".join(f"{k}={v}" for k, v in self.fields.items())
        about = self.message_id or "-"
        return f"{about}  position {self.position}  {self.type}: {shown}"


def changes_since(db: Database, position: int, params: ReportParams) -> Iterator[Change]:
    """Changes in log order, a page of events at a time."""
    after = position
    while True:
        with db.read() as conn:
            page = conn.execute(
                select(events)
                .where(events.c.position > after, events.c.type.in_(MESSAGE_TYPES + OTHER_TYPES))
                .order_by(events.c.position)
                .limit(PAGE)
            ).all()
            if not page:
                return
            owners = _owners(conn, page)
            in_scope = _in_scope(conn, {m for m in owners.values() if m}, params)
        for row in page:
            message_id = owners.get(row.position)
            if row.type in MESSAGE_TYPES and message_id not in in_scope:
                continue
            if row.type in OTHER_TYPES and not _other_in_scope(row, params):
                continue
            yield Change(row.position, row.type, message_id, _shown(row.type, row.payload))
        after = page[-1].position


def _owners(conn: Connection, page: list[Any]) -> dict[int, str | None]:
    """position -> message id, through the correlations for events naming only a carrier id."""
    pairs = {(r.carrier, r.carrier_message_id) for r in page
             if r.message_id is None and r.carrier and r.carrier_message_id}  # fmt: skip
    found: dict[tuple[str, str], str] = {}
    if pairs:
        c = LIVE.correlations
        rows = conn.execute(
            select(c.c.carrier, c.c.carrier_message_id, c.c.message_id).where(
                tuple_(c.c.carrier, c.c.carrier_message_id).in_(list(pairs))
            )
        )
        found = {(r.carrier, r.carrier_message_id): r.message_id for r in rows}
    return {r.position: r.message_id or found.get((r.carrier, r.carrier_message_id)) for r in page}


def _in_scope(conn: Connection, ids: set[str], params: ReportParams) -> set[str]:
    if not ids:
        return set()
    s = LIVE.state
    stmt = select(s.c.message_id).where(
        s.c.message_id.in_(sorted(ids)),
        s.c.accepted_at >= params.start,
        s.c.accepted_at < params.end,
    )
    if params.partner is not None:
        stmt = stmt.where(s.c.partner == params.partner)
    if params.carrier is not None:
        stmt = stmt.where(s.c.carrier == params.carrier)
    return set(conn.scalars(stmt))


def _other_in_scope(row: Any, params: ReportParams) -> bool:
    if row.type == "fx.rate":
        day = str(row.payload.get("day", ""))
        return params.date_from.isoformat() <= day < params.date_to.isoformat()
    return params.carrier is None or row.carrier in (None, params.carrier)


def _shown(kind: str, payload: Any) -> dict[str, Any]:
    if not isinstance(payload, dict):
        return {}
    keys = SHOWN.get(kind) or sorted(
        k for k, v in payload.items() if not isinstance(v, dict | list)
    )
    return {k: payload[k] for k in keys if k in payload}
