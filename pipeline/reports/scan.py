"""Reading message_state for a report: the messages accepted in the period, streamed.

The rows come through a server-side cursor (PostgreSQL) a page at a time, so a month of a
million messages is read in bounded memory; the caller aggregates them into small dicts.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from functools import lru_cache
from typing import Any

import phonenumbers
from sqlalchemy import Connection, select

from pipeline.projector.store import ProjectionTables
from pipeline.reports.model import ReportParams

PAGE = 5000


def messages(
    conn: Connection,
    tables: ProjectionTables,
    params: ReportParams,
    columns: list[str],
    *,
    ordered: bool = False,
) -> Iterator[Any]:
    """Rows of ``columns`` of every message accepted in the period (and partner/carrier).

    ``ordered``: by (accepted_at, message_id), for itemised reports.
    """
    state = tables.state
    stmt = select(*[state.c[c] for c in columns]).where(
        state.c.accepted_at >= params.start, state.c.accepted_at < params.end
    )
    if params.partner is not None:
        stmt = stmt.where(state.c.partner == params.partner)
    if params.carrier is not None:
        stmt = stmt.where(state.c.carrier == params.carrier)
    if ordered:
        stmt = stmt.order_by(state.c.accepted_at, state.c.message_id)
    result = conn.execution_options(yield_per=PAGE).execute(stmt)
    yield from result


def day_of(moment: datetime) -> date:
    """The UTC day a message counts in (that of its ``accepted_at``)."""
    return moment.astimezone(UTC).date()


@lru_cache(maxsize=1 << 16)
def _region_of(phone: str) -> str | None:
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    return phonenumbers.region_code_for_number(number)


def country_of(row: Any, tables: ProjectionTables) -> str | None:
    """The ISO region of the message's phone: the projection's ``country`` column when it
    has one, else derived here with ``phonenumbers`` (the same library and rule)."""
    if "country" in tables.state.c:
        return row.country
    return None if row.phone is None else _region_of(row.phone)


def country_columns(tables: ProjectionTables) -> list[str]:
    return ["country"] if "country" in tables.state.c else ["phone"]
