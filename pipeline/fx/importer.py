"""Appending a rate file's rates: what ``smsrecon fx import`` (and the demo) write.

Kept apart from the command so that everything that imports rates decides the same: a
rate that already counts for its day and pair is skipped, any other names the event it
replaces (pipeline.fx.ratefile).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Connection

from pipeline.domain.fx import FxRate
from pipeline.eventlog import append_in
from pipeline.fx.current import current_rates
from pipeline.fx.ratefile import rate_event, rate_text


@dataclass(frozen=True, slots=True)
class RatesImported:
    appended: int
    duplicates: int


def append_rates(conn: Connection, rates: Sequence[FxRate]) -> RatesImported:
    """Append ``rates`` in the caller's write transaction, so a file is stored whole or
    not at all, even if the database fails midway (a rate file is never large)."""
    counting = current_rates(conn, [(fx.day, fx.base, fx.quote) for fx in rates])
    new, same = [], 0
    for fx in rates:
        now = counting.get((fx.day, fx.base, fx.quote))
        if now is not None and now[0] == rate_text(fx.rate):
            same += 1
            continue
        new.append(rate_event(fx, after=now[1] if now else 0))
    result = append_in(conn, new)
    return RatesImported(len(result.appended), same + len(result.duplicates))
