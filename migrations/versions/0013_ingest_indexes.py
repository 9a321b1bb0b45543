"""Cheaper appends: the event log's read indexes cover only the rows their readers ask for.

Every append writes the row into each index of ``events`` before the commit that lets the
ingest server answer 2xx, so an index must earn that cost on the hot path. Decided from
the readers' query plans (docs/event-log.md, "Indexes"):

- ``ix_events_message_id`` and ``ix_events_carrier_message`` become partial: every reader
  asks for one message id, or one carrier and carrier id, by equality, so a row without
  that id (a report carrying only the carrier's id; an accepted message, a dispatch or a
  price table with no carrier id) need not be in the index.
- ``ix_events_type_position`` (every event, by type) becomes ``ix_events_log_types``: only
  the log-level types read by type (price tables, repricings, FX rates, invoice headers),
  a handful of rows among millions. Written as ORed equalities, the one form of the
  predicate both planners can prove from ``type = :value`` (SQLite does not from ``IN``).

Plain ``CREATE INDEX`` on both engines (it runs inside the migration's transaction): on a
large log it holds appends back while it builds.

Revision ID: 0013_ingest_indexes
Revises: 0011_event_partitions
Create Date: 2026-11-30
"""

from __future__ import annotations

from alembic import op

revision = "0013_ingest_indexes"
down_revision = "0011_event_partitions"
branch_labels = None
depends_on = None

#: The same text as ``pipeline.db.tables.LOG_LEVEL_TYPES`` at this revision (a migration
#: keeps its own copy: the code's list may grow in a later revision).
LOG_TYPES = ("prices.recorded", "prices.repriced", "fx.rate", "carrier.invoice")
LOG_TYPES_WHERE = " OR ".join(f"type = '{t}'" for t in LOG_TYPES)


def upgrade() -> None:
    op.drop_index("ix_events_message_id", table_name="events")
    op.drop_index("ix_events_carrier_message", table_name="events")
    op.drop_index("ix_events_type_position", table_name="events")
    op.execute(
        "CREATE INDEX ix_events_message_id ON events (message_id) WHERE message_id IS NOT NULL"
    )
    op.execute(
        "CREATE INDEX ix_events_carrier_message ON events (carrier, carrier_message_id) "
        "WHERE carrier_message_id IS NOT NULL"
    )
    op.execute(
        f"CREATE INDEX ix_events_log_types ON events (type, position) WHERE {LOG_TYPES_WHERE}"
    )


def downgrade() -> None:
    op.drop_index("ix_events_log_types", table_name="events")
    op.drop_index("ix_events_carrier_message", table_name="events")
    op.drop_index("ix_events_message_id", table_name="events")
    op.create_index("ix_events_message_id", "events", ["message_id"])
    op.create_index("ix_events_carrier_message", "events", ["carrier", "carrier_message_id"])
    op.create_index("ix_events_type_position", "events", ["type", "position"])
