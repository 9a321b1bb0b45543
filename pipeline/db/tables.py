"""SQLAlchemy Core table definitions: the one MetaData every migration is checked against.

Each part of the pipeline keeps its tables in its own module beside its code; they all
register on ``metadata`` here, and ``all_tables()`` imports them so that the drift check
and ``create_all`` in tests see the whole schema.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table

from pipeline.db.types import JSONDocument, UTCDateTime

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: BIGINT on PostgreSQL; on SQLite only INTEGER PRIMARY KEY is the rowid (AUTOINCREMENT).
BigId = BigInteger().with_variant(Integer(), "sqlite")

events = Table(
    "events",
    metadata,
    Column("position", BigId, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("message_id", String(128), nullable=True),
    Column("carrier", String(64), nullable=True),
    Column("carrier_message_id", String(128), nullable=True),
    Column("occurred_at", UTCDateTime(), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    Column("source", String(128), nullable=False),
    Column("payload", JSONDocument, nullable=False),
    Column("dedup_key", String(128), nullable=False, unique=True),
    Index("ix_events_message_id", "message_id"),
    Index("ix_events_carrier_message", "carrier", "carrier_message_id"),
    Index("ix_events_type_position", "type", "position"),
    sqlite_autoincrement=True,
)


def all_tables() -> MetaData:
    """The full schema: import every module that registers tables, then return metadata."""
    import importlib

    for module in _TABLE_MODULES:
        importlib.import_module(module)
    return metadata


#: Modules that define tables on ``metadata`` (add yours here).
_TABLE_MODULES: list[str] = [
    "pipeline.ingest.tables",
    "pipeline.dispatch.tables",
    "pipeline.projector.tables",
]
