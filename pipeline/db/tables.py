"""SQLAlchemy Core table definitions: the one MetaData every migration is checked against.

Each part of the pipeline keeps its tables in its own module beside its code, defined on
``metadata`` from here; ``part_tables()`` names every one, so that the drift
check and ``create_all`` in tests see the whole schema.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, MetaData, String, Table, text

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

#: The event types read by type from the whole log (price tables, repricings, FX rates,
#: invoice headers): a handful of rows, so only they are in ``ix_events_log_types``. A new
#: reader by type of another type adds it here, with a migration that rebuilds the index.
LOG_LEVEL_TYPES = ("prices.recorded", "prices.repriced", "fx.rate", "carrier.invoice")


def _partial(where: str) -> dict[str, object]:
    """The same partial-index predicate on both engines."""
    return {"sqlite_where": text(where), "postgresql_where": text(where)}


# Every append writes each index before the commit that lets ingest answer 2xx, so each
# holds only the rows its readers ask for (docs/event-log.md, "Indexes"). The type list is
# ORed equalities: SQLite proves that predicate from ``type = :value``, not an ``IN`` list.
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
    Index("ix_events_message_id", "message_id", **_partial("message_id IS NOT NULL")),
    Index(
        "ix_events_carrier_message",
        "carrier",
        "carrier_message_id",
        **_partial("carrier_message_id IS NOT NULL"),
    ),
    Index(
        "ix_events_log_types",
        "type",
        "position",
        **_partial(" OR ".join(f"type = '{t}'" for t in LOG_LEVEL_TYPES)),
    ),
    sqlite_autoincrement=True,
)


def all_tables() -> MetaData:
    """The full schema: ``metadata`` once every table of ``part_tables()`` is defined on it."""
    part_tables()
    return metadata


def part_tables() -> tuple[Table, ...]:
    """Every table of the schema, named one by one (add yours here).

    Each part keeps its tables beside its code and defines them on ``metadata``, which it
    imports from this module; so the parts are imported here, on first use, not at the top.
    """
    from pipeline.dashboard import tables as dashboard_tables
    from pipeline.dispatch import tables as dispatch_tables
    from pipeline.ingest import tables as ingest_tables
    from pipeline.mismatches import table as mismatch_table
    from pipeline.projector import tables as projector_tables
    from pipeline.reports import table as report_tables

    return (
        events,
        ingest_tables.quarantine,
        dispatch_tables.deliveries,
        dispatch_tables.partner_circuits,
        projector_tables.message_state,
        mismatch_table.mismatches,
        projector_tables.projector_correlations,
        projector_tables.projector_held,
        projector_tables.projector_checkpoints,
        projector_tables.invoices,
        projector_tables.invoice_lines,
        projector_tables.fx_rates,
        projector_tables.price_tables,
        report_tables.report_runs,
        report_tables.report_periods,
        dashboard_tables.dashboard_daily,
        dashboard_tables.dashboard_rollup,
    )
