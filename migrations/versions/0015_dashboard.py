"""The dashboard's daily rollup (``dashboard_daily``), its checkpoint, and an index on
``message_state.last_position`` by which the rollup finds the messages changed since then.

The rollup starts empty: the dashboard builds it on its first refresh (a scan of
``message_state``, once) and then recomputes only the days whose messages changed.

Revision ID: 0015_dashboard
Revises: 0013_ingest_indexes
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import UTCDateTime

revision = "0015_dashboard"
down_revision = "0013_ingest_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_daily",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("partner", sa.String(64), nullable=True),
        sa.Column("carrier", sa.String(64), nullable=True),
        sa.Column("country", sa.String(3), nullable=True),
        sa.Column("currency_iso", sa.String(3), nullable=True),
        sa.Column("messages", sa.BigInteger(), nullable=False),
        sa.Column("revenue_nano", sa.BigInteger(), nullable=True),
        sa.Column("cost_nano", sa.BigInteger(), nullable=True),
        sa.Column("margin_nano", sa.BigInteger(), nullable=True),
        sa.Column("fx_missing", sa.BigInteger(), nullable=False),
        sa.Column("delivered", sa.BigInteger(), nullable=False),
        sa.Column("finals", sa.BigInteger(), nullable=False),
        sa.Column("priced", sa.BigInteger(), nullable=False),
        sa.Column("priced_parts", sa.BigInteger(), nullable=True),
        sa.Column("charged", sa.BigInteger(), nullable=False),
        sa.Column("payment_sum_minor", sa.BigInteger(), nullable=True),
        sa.Column("currency_exponent", sa.Integer(), nullable=True),
    )
    op.create_index("ix_dashboard_daily_day", "dashboard_daily", ["day"])
    op.create_table(
        "dashboard_rollup",
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("refreshed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_dashboard_rollup"),
    )
    op.create_index("ix_message_state_last_position", "message_state", ["last_position"])


def downgrade() -> None:
    op.drop_index("ix_message_state_last_position", table_name="message_state")
    op.drop_table("dashboard_rollup")
    op.drop_index("ix_dashboard_daily_day", table_name="dashboard_daily")
    op.drop_table("dashboard_daily")
