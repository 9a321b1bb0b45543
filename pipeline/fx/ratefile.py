"""The FX rate file: CSV ``day,base,quote,rate,source`` to ``fx.rate`` events, and back.

A file is judged whole before anything is written: every bad row is reported with its row
number (the header is row 1, as a spreadsheet numbers them) and, if there is any, the file
is refused and nothing is appended. A rate is never half-imported, so a corrected file can
simply be imported again.

Each row becomes one ``fx.rate`` event at the day's 00:00 UTC. A row whose rate is the
one that counts now for its day and pair (the last in the log; the rate in its shortest
exact text, so ``1.10`` and ``1.1`` are the same) appends nothing, so importing the same
file again appends nothing; any other is a new event that replaces the old one (the later
in the log counts, pipeline.domain.fx). Its ``dedup_key``,
``fx:<day>:<base>:<quote>:<source>:<rate>:after:<position>``, names the event it replaces
(0 for none): a rate corrected and then put back is two new facts, never a duplicate of
the first.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from pipeline.domain.fx import FxRate
from pipeline.domain.money import currency_exponent
from pipeline.eventlog.model import NewEvent
from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import ParseError

HEADER = ("day", "base", "quote", "rate", "source")
EVENT_TYPE = "fx.rate"
#: The ``source`` column of the events (the rate's own source is in the payload).
EVENT_SOURCE = "fx import"
#: Longest rate source name ("ecb", "cbr", "bank-x-daily"): keeps the dedup key short.
MAX_SOURCE = 48
_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)


@dataclass(frozen=True, slots=True)
class RowProblem:
    row: int
    field: str
    reason: str

    def __str__(self) -> str:
        return f"row {self.row}: {self.field}: {self.reason}"


class RateFileError(ValueError):
    """The file is refused; ``problems`` lists every bad row (or the file's own problem)."""

    def __init__(self, problems: list[RowProblem]) -> None:
        super().__init__(f"{len(problems)} problem(s)")
        self.problems = problems


def rate_text(rate: Decimal) -> str:
    """The shortest exact fixed-point text of a rate: ``1.10`` -> ``1.1``, ``1E+2`` -> ``100``."""
    return format(rate.normalize(), "f")


def parse_rate_file(text: str) -> list[FxRate]:
    """Every row of a rate file as an FxRate, or RateFileError listing every bad row."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""))
    header = next(reader, None)
    if header is None or tuple(h.strip().lower() for h in header) != HEADER:
        raise RateFileError([RowProblem(1, "header", f"must be {','.join(HEADER)}")])
    rates: list[FxRate] = []
    problems: list[RowProblem] = []
    seen: dict[tuple[date, str, str, str], tuple[int, Decimal]] = {}
    for row_number, row in enumerate(reader, start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        try:
            fx = parse_row(row)
        except ParseError as exc:
            problems.append(RowProblem(row_number, exc.field, exc.reason))
            continue
        key = (fx.day, fx.base, fx.quote, fx.source)
        earlier = seen.get(key)
        if earlier is not None and earlier[1] != fx.rate:
            problems.append(
                RowProblem(
                    row_number,
                    "rate",
                    f"differs from row {earlier[0]} for the same day, pair and source",
                )
            )
            continue
        seen.setdefault(key, (row_number, fx.rate))
        rates.append(fx)
    if problems:
        raise RateFileError(problems)
    if not rates:
        raise RateFileError([RowProblem(2, "rows", "the file holds no rates")])
    return rates


def parse_row(row: list[str]) -> FxRate:
    """One data row, every field checked; ParseError naming the first bad field."""
    if len(row) != len(HEADER):
        raise ParseError("row", f"{len(row)} fields, expected {len(HEADER)}")
    day_text, base, quote, rate_raw, source = (cell.strip() for cell in row)
    if not _DAY.fullmatch(day_text):
        raise ParseError("day", "not a date written YYYY-MM-DD")
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        raise ParseError("day", f"no such day: {day_text}") from None
    for field, code in (("base", base), ("quote", quote)):
        if currency_exponent(code) is None:
            raise ParseError(field, f"{code[:8]!r} is not an ISO 4217 currency code")
    if base == quote:
        raise ParseError("quote", "the same currency as base")
    rate = bounded.decimal(rate_raw, "rate")
    if rate <= 0:
        raise ParseError("rate", "must be above 0")
    if not source or len(source) > MAX_SOURCE or not source.isprintable():
        raise ParseError("source", f"1 to {MAX_SOURCE} printable characters")
    return FxRate(day=day, base=base, quote=quote, rate=rate, source=source)


def rate_event(fx: FxRate, after: int = 0) -> NewEvent:
    """The ``fx.rate`` event of one rate (docs/events.md), replacing the one at log
    position ``after`` (0: the first rate of its day and pair)."""
    text = rate_text(fx.rate)
    day = fx.day.isoformat()
    return NewEvent(
        type=EVENT_TYPE,
        occurred_at=datetime(fx.day.year, fx.day.month, fx.day.day, tzinfo=UTC),
        source=EVENT_SOURCE,
        payload={"day": day, "base": fx.base, "quote": fx.quote, "rate": text, "source": fx.source},
        dedup_key=f"fx:{day}:{fx.base}:{fx.quote}:{fx.source}:{text}:after:{after}",
    )


def rate_of_payload(payload: Mapping[str, Any]) -> FxRate:
    """The FxRate an ``fx.rate`` event's payload states (the inverse of ``rate_event``)."""
    return FxRate(
        day=date.fromisoformat(payload["day"]),
        base=payload["base"],
        quote=payload["quote"],
        rate=Decimal(payload["rate"]),
        source=payload["source"],
    )
