"""Column types that keep money exact and time in UTC on both SQLite and PostgreSQL.

Money is a ``Decimal`` stored as canonical text. SQLite has no decimal type (SQLAlchemy's
``Numeric`` hands back floats there), and carrier prices carry more decimals than a
currency's minor unit (Vonage quotes ``0.03330000`` EUR per part), so integer minor units
would round a carrier's cost. Text keeps every digit on both engines; SQL that sums money
casts to NUMERIC on PostgreSQL. This is the one money representation everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.types import TypeDecorator, TypeEngine

from pipeline.db.times import parse_sqlite_time, sqlite_time_text


def money_text(value: Decimal) -> str:
    """Canonical text for a Decimal: no exponent, no trailing noise beyond what was given."""
    if not isinstance(value, Decimal):
        raise TypeError(f"money must be Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"money must be finite, got {value}")
    return format(value, "f")


class Money(TypeDecorator[Decimal]):
    """A Decimal stored as text; floats are refused, never silently converted."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        if value is None:
            return None
        if isinstance(value, float):
            raise TypeError("money must be Decimal, not float")
        if isinstance(value, (int, str)):
            try:
                value = Decimal(value)
            except InvalidOperation:
                raise ValueError(f"not a decimal amount: {value!r}") from None
        return money_text(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else Decimal(value)


class _SQLiteTimeText(SQLITE_DATETIME):
    """SQLite's DATETIME column, its text written and read by ``pipeline.db.times`` alone."""

    def bind_processor(self, dialect: Any) -> None:
        return None

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; naive datetimes are refused rather than guessed.

    On SQLite the text is ``pipeline.db.times``' (every year 1-9999 round-trips, and rows an
    older version wrote with a short year still read back).
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Any) -> TypeEngine[Any]:
        if dialect.name == "sqlite":
            return dialect.type_descriptor(_SQLiteTimeText())
        return dialect.type_descriptor(self.impl)

    def process_bind_param(self, value: Any, dialect: Any) -> Any:
        if value is None:
            return None
        if not isinstance(value, datetime):
            raise TypeError(f"expected datetime, got {type(value).__name__}")
        if value.tzinfo is None:
            raise ValueError("naive datetime: every stored time must be timezone-aware UTC")
        if dialect.name == "sqlite":
            # Naive UTC text, so that text comparison orders correctly.
            return sqlite_time_text(value)
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            return parse_sqlite_time(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


#: JSON on SQLite, JSONB on PostgreSQL.
JSONDocument = JSON().with_variant(JSONB(), "postgresql")
