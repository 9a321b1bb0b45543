"""What a report is: typed columns, a grain, and a function from a projection to rows.

A definition is pure of I/O choices: it reads the tables it is given (the live projection or
a scratch one folded from the log up to a pinned position) through the connection it is
given, and yields plain Python values. Formats, pinning and verification work on any
definition alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Connection

from pipeline.projector.store import ProjectionTables

#: Column kinds, each with one text form (CSV) and one Arrow type (Parquet).
TEXT, INT, MONEY, RATIO, DATE, TIME, BOOL = "text", "int", "money", "ratio", "date", "time", "bool"
KINDS = (TEXT, INT, MONEY, RATIO, DATE, TIME, BOOL)


@dataclass(frozen=True)
class Field:
    name: str
    kind: str
    doc: str = ""

    def __post_init__(self) -> None:
        assert self.kind in KINDS, self.kind


@dataclass(frozen=True)
class ReportParams:
    """What a run asks for: accepted in [date_from, date_to), optionally one partner/carrier.

    ``reporting_currency`` is not a filter but an input (``finance.reporting_currency``):
    it is pinned with the run so that a rebuild labels the margin the same way.
    """

    date_from: date
    date_to: date
    partner: str | None = None
    carrier: str | None = None
    reporting_currency: str = "EUR"

    @property
    def start(self) -> datetime:
        return datetime(self.date_from.year, self.date_from.month, self.date_from.day, tzinfo=UTC)

    @property
    def end(self) -> datetime:
        return datetime(self.date_to.year, self.date_to.month, self.date_to.day, tzinfo=UTC)

    def as_json(self) -> dict[str, Any]:
        return {
            "from": self.date_from.isoformat(),
            "to": self.date_to.isoformat(),
            "partner": self.partner,
            "carrier": self.carrier,
            "reporting_currency": self.reporting_currency,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReportParams:
        return cls(
            date_from=date.fromisoformat(data["from"]),
            date_to=date.fromisoformat(data["to"]),
            partner=data.get("partner"),
            carrier=data.get("carrier"),
            reporting_currency=data.get("reporting_currency") or "EUR",
        )


Rows = Iterator[tuple[Any, ...]]
Compute = Callable[[Connection, ProjectionTables, ReportParams], Rows]


@dataclass(frozen=True)
class Report:
    name: str
    #: Raised whenever the rows a definition yields for the same log change meaning.
    version: int
    grain: str
    columns: tuple[Field, ...]
    compute: Compute = field(repr=False)
    #: One row per message or mismatch (carrying message_id and last_position), not a sum.
    itemised: bool = False

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    def rows(self, conn: Connection, tables: ProjectionTables, params: ReportParams) -> Rows:
        width = len(self.columns)
        for row in self.compute(conn, tables, params):
            assert len(row) == width, (self.name, row)
            yield row


def sort_key(values: tuple[Any, ...]) -> tuple[Any, ...]:
    """Order group keys with NULLs first, whatever their types."""
    return tuple((v is not None, v if v is not None else "") for v in values)
