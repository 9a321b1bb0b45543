"""The append-only event log.

Revision ID: 0001_event_log
Revises:
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import JSONDocument, UTCDateTime

revision = "0001_event_log"
down_revision = None
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

PG_GUARD = """
CREATE FUNCTION smsrecon_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events is append-only: % is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("position", BigId, primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("carrier", sa.String(64), nullable=True),
        sa.Column("carrier_message_id", sa.String(128), nullable=True),
        sa.Column("occurred_at", UTCDateTime(), nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("payload", JSONDocument, nullable=False),
        sa.Column("dedup_key", sa.String(128), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_events"),
        sa.UniqueConstraint("dedup_key", name="uq_events_dedup_key"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_events_message_id", "events", ["message_id"])
    op.create_index("ix_events_carrier_message", "events", ["carrier", "carrier_message_id"])
    op.create_index("ix_events_type_position", "events", ["type", "position"])

    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_GUARD)
        for op_name in ("UPDATE", "DELETE", "TRUNCATE"):
            op.execute(
                f"CREATE TRIGGER events_no_{op_name.lower()} BEFORE {op_name} ON events "
                "FOR EACH STATEMENT EXECUTE FUNCTION smsrecon_events_append_only()"
            )
    else:
        for op_name in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER events_no_{op_name.lower()} BEFORE {op_name} ON events "
                f"BEGIN SELECT RAISE(ABORT, 'events is append-only: {op_name} is not allowed'); END"
            )


def downgrade() -> None:
    # The log is the only record of what happened: dropping it is allowed only while it is
    # empty. Raising here rolls back the whole downgrade (it runs in one transaction).
    stored = op.get_bind().execute(sa.text("SELECT count(*) FROM events")).scalar()
    if stored:
        raise RuntimeError(
            f"refusing to downgrade below {revision}: the events table holds {stored} "
            "events and dropping it would destroy the log (back the database up, and drop "
            "it yourself if that is really what you mean)"
        )
    if op.get_bind().dialect.name == "postgresql":
        for op_name in ("update", "delete", "truncate"):
            op.execute(f"DROP TRIGGER IF EXISTS events_no_{op_name} ON events")
        op.execute("DROP FUNCTION IF EXISTS smsrecon_events_append_only()")
    op.drop_table("events")
