"""Which rate counts now for a day and pair: the last ``fx.rate`` event in the log.

Read from the log, not from the projection, so an import decides the same however far the
projector has come.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date

from sqlalchemy import Connection, select

from pipeline.db.tables import events
from pipeline.eventlog.read import row_to_event
from pipeline.fx.ratefile import EVENT_TYPE


def current_rates(
    conn: Connection, keys: Iterable[tuple[date, str, str]]
) -> dict[tuple[date, str, str], tuple[str, int]]:
    """(day, base, quote) -> (the counting rate's text, its log position), for those that
    have one. One indexed query per key: a rate file is days x pairs rows."""
    out: dict[tuple[date, str, str], tuple[str, int]] = {}
    for day, base, quote in set(keys):
        prefix = f"fx:{day.isoformat()}:{base}:{quote}:"
        row = conn.execute(
            select(events)
            .where(events.c.type == EVENT_TYPE, events.c.dedup_key.startswith(prefix))
            .order_by(events.c.position.desc())
            .limit(1)
        ).first()
        if row is not None:
            event = row_to_event(row)
            out[(day, base, quote)] = (str(event.payload.get("rate")), event.position)
    return out
