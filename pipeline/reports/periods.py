"""Period close: pin the standard reports of a month, and show what arrived after.

``period close`` saves every standard report for the month from one snapshot (all pinned
to one position) and records ``period.closed`` naming their runs; a closed run never
changes. ``report corrections`` compares the pinned messages run with the live projection,
message by message and field by field. ``period reopen`` records why the month is open again.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from itertools import groupby
from typing import Any

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from pipeline.db.engine import Database
from pipeline.eventlog.append import append_in
from pipeline.eventlog.model import RECEIVED, TIME_SOURCE, NewEvent, utc_now
from pipeline.projector.store import LIVE
from pipeline.reports.catalog import REPORTS, STANDARD
from pipeline.reports.formats import value_text
from pipeline.reports.itemised import MESSAGES
from pipeline.reports.model import ReportParams
from pipeline.reports.runs import Pinned, Run, as_of, load_run, pinned_lines, store_run
from pipeline.reports.table import report_periods

CLOSED, REOPENED = "closed", "reopened"
#: Messages report columns that say where a row is, not what it holds.
NOT_COMPARED = {"message_id", "last_position"}


class PeriodRefused(Exception):
    """The period cannot be closed, reopened or compared in its present state."""


def month_bounds(month: str) -> tuple[date, date]:
    """'2026-10' -> (2026-10-01, 2026-11-01): [from, to)."""
    try:
        first = datetime.strptime(month, "%Y-%m").date()
    except ValueError:
        raise PeriodRefused(f"{month!r}: a period is a month, YYYY-MM") from None
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return first, following


def _event(kind: str, month: str, payload: dict[str, Any]) -> NewEvent:
    now = utc_now()
    body = {"period": month, **payload, TIME_SOURCE: RECEIVED}  # our act: clock-neutral
    return NewEvent(
        kind, now, "smsrecon period", body, dedup_key=f"{kind}:{month}:{now.isoformat()}"
    )


def close_period(
    db: Database, month: str, *, note: str | None, reporting_currency: str
) -> tuple[list[Run], int]:
    """Pin the standard reports and record ``period.closed``; (runs, event position).

    Failure policy: the runs, their events, the period row and ``period.closed`` commit in
    one transaction; a crash leaves the month as it was. Two closes racing: the period row's
    conditional update lets one through, the other is refused.
    """
    start, end = month_bounds(month)
    with db.read() as conn:
        if _status(conn, month) == CLOSED:
            raise PeriodRefused(f"period {month} is already closed")
    params = ReportParams(start, end, reporting_currency=reporting_currency)
    pinned: list[Pinned] = []
    with db.snapshot() as conn:
        position = as_of(conn)
        for name in STANDARD:
            report = REPORTS[name]
            pin = Pinned(report)
            for _ in pin.through(report.rows(conn, LIVE, params)):
                pass
            pinned.append(pin)
    try:
        with db.write() as conn:
            runs = [store_run(conn, pin, params, position, period=month) for pin in pinned]
            ids = {run.report: run.id for run in runs}
            event = _event("period.closed", month, {"note": note, "runs": ids,
                                                    "as_of_position": position})  # fmt: skip
            event_position = append_in(conn, [event]).positions[0]
            _mark(conn, month, CLOSED, ids, note, event_position)
    except IntegrityError:
        raise PeriodRefused(f"period {month} is already closed") from None
    return runs, event_position


def reopen_period(db: Database, month: str, *, note: str) -> int:
    month_bounds(month)
    if not note.strip():
        raise PeriodRefused("reopening a period needs a note saying why")
    with db.write() as conn:
        row = conn.execute(select(report_periods).where(report_periods.c.period == month)).first()
        if row is None or row.status != CLOSED:
            raise PeriodRefused(f"period {month} is not closed")
        event = _event("period.reopened", month, {"note": note, "runs": row.runs})
        position = append_in(conn, [event]).positions[0]
        changed = conn.execute(
            update(report_periods)
            .where(report_periods.c.period == month, report_periods.c.status == CLOSED)
            .values(status=REOPENED, note=note, position=position, changed_at=utc_now())
        ).rowcount
        if changed != 1:
            raise PeriodRefused(f"period {month} is not closed")
    return position


def _status(conn: Connection, month: str) -> str | None:
    return conn.scalar(select(report_periods.c.status).where(report_periods.c.period == month))


def _mark(
    conn: Connection, month: str, status: str, runs: dict[str, int], note: str | None, at: int
) -> None:
    values = {"status": status, "runs": runs, "note": note, "position": at, "changed_at": utc_now()}
    changed = conn.execute(
        update(report_periods)
        .where(report_periods.c.period == month, report_periods.c.status != CLOSED)
        .values(**values)
    ).rowcount
    if changed == 0:
        if _status(conn, month) == CLOSED:
            raise PeriodRefused(f"period {month} is already closed")
        conn.execute(insert(report_periods).values(period=month, **values))


@dataclass(frozen=True)
class Correction:
    message_id: str
    field: str
    closed: str
    current: str


def corrections(db: Database, month: str) -> tuple[Run, Iterator[Correction]]:
    """The messages run of the month's last close, and every field that differs now."""
    month_bounds(month)
    with db.read() as conn:
        row = conn.execute(select(report_periods).where(report_periods.c.period == month)).first()
        if row is None:
            raise PeriodRefused(f"period {month} was never closed")
        run, canonical_gz = load_run(conn, int(row.runs[MESSAGES.name]))
    return run, _compare(db, run, canonical_gz)


def _compare(db: Database, run: Run, canonical_gz: bytes) -> Iterator[Correction]:
    names = MESSAGES.names
    at = names.index("accepted_at")
    closed_rows = csv.reader(pinned_lines(canonical_gz))
    next(closed_rows)  # header
    with db.snapshot() as conn:
        live = ([value_text(v) for v in row] for row in MESSAGES.rows(conn, LIVE, run.params))
        yield from _merge(_by_time(closed_rows, at), _by_time(live, at), names)


def _by_time(rows: Iterator[list[str]], at: int) -> Iterator[tuple[datetime, dict[str, list[str]]]]:
    """Rows grouped by accepted_at (both sides are ordered by it; message ids within one
    instant are matched by id, so no engine's text collation matters)."""
    for text, group in groupby(rows, key=lambda r: r[at]):
        yield datetime.fromisoformat(text), {r[0]: r for r in group}


def _merge(
    closed: Iterator[tuple[datetime, dict[str, list[str]]]],
    live: Iterator[tuple[datetime, dict[str, list[str]]]],
    names: list[str],
) -> Iterator[Correction]:
    a, b = next(closed, None), next(live, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a[0] < b[0]):
            yield from _pair(a[1], {}, names)  # type: ignore[index]
            a = next(closed, None)
        elif a is None or b[0] < a[0]:
            yield from _pair({}, b[1], names)
            b = next(live, None)
        else:
            yield from _pair(a[1], b[1], names)
            a, b = next(closed, None), next(live, None)


def _pair(
    closed: dict[str, list[str]], live: dict[str, list[str]], names: list[str]
) -> Iterator[Correction]:
    for message_id in sorted(closed.keys() | live.keys()):
        before, after = closed.get(message_id), live.get(message_id)
        if before is None or after is None:
            yield Correction(message_id, "message", "" if before is None else "present",
                             "" if after is None else "present")  # fmt: skip
            continue
        for name, old, new in zip(names, before, after, strict=True):
            if name not in NOT_COMPARED and old != new:
                yield Correction(message_id, name, old, new)
