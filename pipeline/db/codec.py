"""The one codec for money, times and JSON: what a column's value becomes when it is bound.

The SQLAlchemy column types (``pipeline.db.types``) call these functions one value at a
time; the fast paths that write through the driver (appends, the projector's state rows)
call them through a ``RowCodec`` built from the table's own columns, so both bind exactly
the same text. The engine-specific part (how a time and a JSON document are handed to the
driver) is the backend's (``pipeline.db.backend``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import JSON, Table

if TYPE_CHECKING:
    from pipeline.db.backend import Backend


def money_text(value: Decimal) -> str:
    """Canonical text for a Decimal: no exponent, no trailing noise beyond what was given."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"money must be finite, got {value}")
    return format(value, "f")


def bind_money(value: Any) -> str:
    """What a money column binds: Decimal (or an int or decimal text) as canonical text.

    Floats are refused, never silently converted.
    """
    if isinstance(value, float):
        raise TypeError("money must be Decimal, not float")
    if isinstance(value, (int, str)):
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"not a decimal amount: {value!r}") from None
    return money_text(value)


def load_money(value: str) -> Decimal:
    return Decimal(value)


#: ``json.dumps(value, ensure_ascii=False, separators=(",", ":"))`` builds this very encoder
#: on every call; the projector writes a document per message per batch.
_COMPACT = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def json_text(value: Any) -> str:
    """A JSON document as compact text (non-ASCII kept as is)."""
    return _COMPACT.encode(value)


Encoder = Callable[[Any], Any]


@dataclass(frozen=True, slots=True)
class RowCodec:
    """How one table's rows are bound through the driver, column by column.

    Built from the table's own column list and types, so a fast path names its values by
    column and binds exactly what the column types would.
    """

    table: Table
    columns: tuple[str, ...]
    #: (column, encoder) for every column whose value is not bound as it is.
    encoders: tuple[tuple[str, Encoder], ...]

    def encode(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The driver parameters of one row: every column of the table, by name."""
        return self.encode_into({name: values.get(name) for name in self.columns})

    def encode_into(self, row: dict[str, Any]) -> dict[str, Any]:
        """Encode a row that already names exactly ``columns`` in place (a fresh dict the
        caller owns: the fast paths spare a copy per row)."""
        for name, encoder in self.encoders:
            value = row[name]
            if value is not None:
                row[name] = encoder(value)
        return row

    def encode_all(self, rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        return [self.encode(row) for row in rows]


def row_codec(backend: Backend, table: Table, columns: Iterable[str] | None = None) -> RowCodec:
    """The codec of ``table`` (or of these of its columns) on ``backend``."""
    from pipeline.db.types import Money, UTCDateTime

    names = tuple(columns) if columns is not None else tuple(c.name for c in table.c)
    encoders: list[tuple[str, Encoder]] = []
    for name in names:
        kind = table.c[name].type
        if isinstance(kind, Money):
            encoders.append((name, bind_money))
        elif isinstance(kind, UTCDateTime):
            encoders.append((name, backend.bind_time))
        elif isinstance(kind, JSON):
            encoders.append((name, backend.bind_json))
    return RowCodec(table, names, tuple(encoders))
