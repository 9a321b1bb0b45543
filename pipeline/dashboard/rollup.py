"""Keep ``dashboard_daily`` equal to what the daily views would sum, one day at a time.

A refresh reads the highest ``message_state.last_position`` (an index's last entry) and
compares it with the rollup's checkpoint. The projector raises a message's
``last_position`` whenever it changes the row, and commits in log order, so the messages
changed since the checkpoint are exactly those above it: their accepted days are the only
days whose sums can differ, and those days are recomputed whole from ``message_state``
(an index range on ``accepted_at`` per run of days), in the same transaction that moves
the checkpoint. A refresh therefore costs the changed days' messages, not the month's.

It rebuilds everything when it has no checkpoint yet (the first refresh after the
migration) or when the highest ``last_position`` is below it (the database was restored
or rebuilt from an older log). ``smsrecon replay --rebuild`` under changed settings
re-derives amounts without raising any ``last_position``, so it ends by rebuilding the
rollup whole (``pipeline/cli/project_commands.py``); ``smsrecon dashboard
--rebuild-rollup`` does the same by hand (docs/dashboard.md).

The sums are the views' own SQL aggregates over the same rows, at a finer grain: a sum of
sums with SQL's NULL rule (NULL only when every part is NULL) is the view's sum exactly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from sqlalchemy import Connection, delete, func, insert, select, text, update

from pipeline.dashboard.tables import dashboard_daily, dashboard_rollup
from pipeline.db.backend import Backend, backend_of, iter_chunks
from pipeline.projector.tables import message_state

log = logging.getLogger("smsrecon.dashboard")

NAME = "daily"
IN_CHUNK = 500

COLUMNS = (
    "day, partner, carrier, country, currency_iso, messages, revenue_nano, cost_nano, "
    "margin_nano, fx_missing, delivered, finals, priced, priced_parts, charged, "
    "payment_sum_minor, currency_exponent"
)


def _units(expr: str) -> str:
    """An integer sum as a BIGINT on both engines (PostgreSQL's SUM of BIGINT is NUMERIC)."""
    return f"CAST({expr} AS BIGINT)"


def fill_sql(b: Backend, where: str = "") -> str:
    """INSERT the rollup's rows for the accepted messages matching ``where`` (AND ...)."""
    count = "sum(CASE WHEN {} THEN 1 ELSE 0 END)"
    return f"""
INSERT INTO dashboard_daily ({COLUMNS})
SELECT {b.utc_day_sql("accepted_at")}, partner, carrier, country, currency_iso, count(*),
  {_units("sum(revenue_reporting_nano)")}, {_units("sum(cost_reporting_nano)")},
  {_units("sum(margin_reporting_nano)")}, {_units(count.format("fx_missing"))},
  {_units(count.format("status = 1"))}, {_units(count.format("is_final"))},
  count(payment_sum_minor),
  {_units("sum(CASE WHEN payment_sum_minor IS NOT NULL THEN parts_amount END)")},
  {_units(count.format("payment_sum_minor > 0"))}, {_units("sum(payment_sum_minor)")},
  max(CASE WHEN payment_sum_minor IS NOT NULL THEN currency_exponent END)
FROM message_state
WHERE accepted_at IS NOT NULL {where}
GROUP BY 1, 2, 3, 4, 5
"""


@dataclass(frozen=True)
class Refreshed:
    """What a refresh did: the checkpoint it left, the days it recomputed, and whether it
    rebuilt the whole rollup."""

    position: int
    days: int
    full: bool


def refresh(conn: Connection, *, full: bool = False) -> Refreshed:
    """Bring the rollup up to the projection, in the caller's write transaction."""
    b = backend_of(conn)
    b.serialise_rollup(conn)
    r = dashboard_rollup
    # Read after the lock: a refresh that waited finds the work done by the one before.
    checkpoint = conn.scalar(select(r.c.position).where(r.c.name == NAME))
    head = int(conn.scalar(select(func.max(message_state.c.last_position))) or 0)
    if checkpoint is not None and head == checkpoint and not full:
        return Refreshed(head, 0, False)
    started = time.perf_counter()
    if full or checkpoint is None or head < checkpoint:
        conn.execute(delete(dashboard_daily))
        conn.execute(text(fill_sql(b)))
        days = int(conn.scalar(select(func.count(func.distinct(dashboard_daily.c.day)))) or 0)
        rebuilt = True
    else:
        changed = sorted(
            conn.scalars(
                text(
                    f"SELECT DISTINCT {b.utc_day_sql('accepted_at')} FROM message_state "
                    "WHERE last_position > :checkpoint AND accepted_at IS NOT NULL"
                ),
                {"checkpoint": checkpoint},
            )
        )
        recompute_days(conn, changed)
        days, rebuilt = len(changed), False
    _store(conn, head, exists=checkpoint is not None)
    if rebuilt:
        log.info(
            "dashboard rollup rebuilt: %d days up to position %d in %.1f s",
            days, head, time.perf_counter() - started,
        )  # fmt: skip
    return Refreshed(head, days, rebuilt)


def recompute_days(conn: Connection, days: Sequence[str]) -> None:
    """Replace the rollup's rows of ``days`` ('YYYY-MM-DD') with sums from message_state."""
    if not days:
        return
    b = backend_of(conn)
    for chunk in iter_chunks(list(days), IN_CHUNK):
        conn.execute(delete(dashboard_daily).where(dashboard_daily.c.day.in_(chunk)))
    sql = text(fill_sql(b, "AND accepted_at >= :start AND accepted_at < :end"))
    for start, end in _runs(days):
        conn.execute(sql, {"start": b.bind_time(start), "end": b.bind_time(end)})


def _runs(days: Sequence[str]) -> Iterator[tuple[datetime, datetime]]:
    """Consecutive days as [start, end) UTC ranges, so each is one index range scan."""
    start: date | None = None
    end: date | None = None
    for day in sorted({date.fromisoformat(d) for d in days}):
        if end is not None and day == end:
            end = day + timedelta(days=1)
            continue
        if start is not None and end is not None:
            yield _midnight(start), _midnight(end)
        start, end = day, day + timedelta(days=1)
    if start is not None and end is not None:
        yield _midnight(start), _midnight(end)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _store(conn: Connection, position: int, *, exists: bool) -> None:
    r = dashboard_rollup
    values = {"position": position, "refreshed_at": datetime.now(UTC)}
    if exists:
        conn.execute(update(r).where(r.c.name == NAME).values(**values))
    else:
        conn.execute(insert(r).values(name=NAME, **values))
