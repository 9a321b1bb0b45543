"""Dispatch: deliveries and partner circuits.

Revision ID: 0004_dispatch
Revises: 0003_projection
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import UTCDateTime

revision = "0004_dispatch"
down_revision = "0003_projection"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "deliveries",
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_altegio_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("last_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("sent_hash", sa.String(128), nullable=True),
        sa.Column("sent_version", sa.Integer(), nullable=True),
        sa.Column("acked_hash", sa.String(128), nullable=True),
        sa.Column("acked_version", sa.Integer(), nullable=True),
        sa.Column("acked_at", UTCDateTime(), nullable=True),
        sa.Column("held_hash", sa.String(128), nullable=True),
        sa.Column("held_reason", sa.String(64), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("first_pending_at", UTCDateTime(), nullable=True),
        sa.Column("lease_owner", sa.String(128), nullable=True),
        sa.Column("lease_until", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_deliveries"),
    )
    op.create_index("ix_deliveries_next_attempt_at", "deliveries", ["next_attempt_at"])
    op.create_index("ix_deliveries_state", "deliveries", ["state"])
    op.create_table(
        "partner_circuits",
        sa.Column("partner", sa.String(64), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("probe_at", UTCDateTime(), nullable=True),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("partner", name="pk_partner_circuits"),
    )


def downgrade() -> None:
    op.drop_table("partner_circuits")
    op.drop_index("ix_deliveries_state", table_name="deliveries")
    op.drop_index("ix_deliveries_next_attempt_at", table_name="deliveries")
    op.drop_table("deliveries")
