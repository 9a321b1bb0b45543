"""Column types that keep money exact and time in UTC on both SQLite and PostgreSQL.

Money is a ``Decimal`` stored as canonical text. SQLite has no decimal type (SQLAlchemy's
``Numeric`` hands back floats there), and carrier prices carry more decimals than a
currency's minor unit (Vonage quotes ``0.03330000`` EUR per part), so integer minor units
would round a carrier's cost. Text keeps every digit on both engines; SQL that sums money
does so through ``Backend.money_sum``, exactly on both. This is the one money
representation everywhere.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import JSON, DateTime, String
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.sqlite import DATETIME as SQLITE_DATETIME
from sqlalchemy.types import TypeDecorator, TypeEngine

from pipeline.db.backend import backend_named
from pipeline.db.codec import bind_money, load_money, money_text
from pipeline.times import parse_sqlite_time

__all__ = ["JSONDocument", "Money", "UTCDateTime", "money_text"]


class Money(TypeDecorator[Decimal]):
    """A Decimal stored as text; floats are refused, never silently converted."""

    impl = String(40)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> str | None:
        return None if value is None else bind_money(value)

    def process_result_value(self, value: Any, dialect: Any) -> Decimal | None:
        return None if value is None else load_money(value)


class _SQLiteTimeText(SQLITE_DATETIME):
    """SQLite's DATETIME column, its text written and read by ``pipeline.times`` alone."""

    def bind_processor(self, dialect: Any) -> None:
        return None

    def result_processor(self, dialect: Any, coltype: Any) -> None:
        return None


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC in and out; naive datetimes are refused rather than guessed.

    On SQLite the text is ``pipeline.times``' (every year 1-9999 round-trips, and rows an
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
        # The backend's own binding, the one the fast paths use (``pipeline.db.codec``).
        return backend_named(dialect.name).bind_time(value)

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
