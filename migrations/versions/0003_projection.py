"""Projection: message_state, correlations, held reports, mismatches, checkpoints.

Revision ID: 0003_projection
Revises: 0002_ingest
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import JSONDocument, Money, UTCDateTime

revision = "0003_projection"
down_revision = "0002_ingest"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "message_state",
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("partner", sa.String(64), nullable=True),
        sa.Column("phone", sa.String(32), nullable=True),
        sa.Column("channel", sa.String(16), nullable=True),
        sa.Column("dispatch_type", sa.String(16), nullable=True),
        sa.Column("delivery_callback_url", sa.String(2048), nullable=True),
        sa.Column("free", sa.Boolean(), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=True),
        sa.Column("carrier_message_id", sa.String(128), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("status_at", UTCDateTime(), nullable=True),
        sa.Column("is_final", sa.Boolean(), nullable=False),
        sa.Column("parts_amount", sa.Integer(), nullable=True),
        sa.Column("parts_source", sa.String(16), nullable=True),
        sa.Column("payment_sum", Money(), nullable=True),
        sa.Column("currency_iso", sa.String(3), nullable=True),
        sa.Column("carrier_cost", Money(), nullable=True),
        sa.Column("carrier_cost_currency", sa.String(3), nullable=True),
        sa.Column("accepted_at", UTCDateTime(), nullable=True),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload_hash", sa.String(64), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("fold_state", JSONDocument, nullable=False),
        sa.PrimaryKeyConstraint("message_id", name="pk_message_state"),
    )
    op.create_table(
        "mismatches",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("subject", sa.String(256), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("origin", sa.String(16), nullable=False),
        sa.Column("detail", JSONDocument, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("opened_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("first_position", sa.BigInteger(), nullable=True),
        sa.Column("last_position", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_mismatches"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_mismatches_message_id", "mismatches", ["message_id"])
    op.create_index("ix_mismatches_status_kind", "mismatches", ["status", "kind"])
    op.create_index(
        "ix_mismatches_open_subject_kind",
        "mismatches",
        ["subject", "kind"],
        unique=True,
        sqlite_where=sa.text("status = 'open'"),
        postgresql_where=sa.text("status = 'open'"),
    )
    op.create_table(
        "projector_correlations",
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("carrier_message_id", sa.String(128), nullable=False),
        sa.Column("message_id", sa.String(128), nullable=False),
        sa.Column("part", sa.Integer(), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("carrier", "carrier_message_id", name="pk_projector_correlations"),
    )
    op.create_index(
        "ix_projector_correlations_message_id", "projector_correlations", ["message_id"]
    )
    op.create_table(
        "projector_held",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=True),
        sa.Column("carrier_message_id", sa.String(128), nullable=True),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("held_at", UTCDateTime(), nullable=False),
        sa.Column("deadline", UTCDateTime(), nullable=False),
        sa.Column("expired", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_projector_held"),
    )
    op.create_index(
        "ix_projector_held_carrier_message", "projector_held", ["carrier", "carrier_message_id"]
    )
    op.create_index("ix_projector_held_message_id", "projector_held", ["message_id"])
    op.create_index("ix_projector_held_deadline", "projector_held", ["expired", "deadline"])
    op.create_table(
        "projector_checkpoints",
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("clock", UTCDateTime(), nullable=True),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_projector_checkpoints"),
    )


def downgrade() -> None:
    op.drop_table("projector_checkpoints")
    op.drop_index("ix_projector_held_deadline", table_name="projector_held")
    op.drop_index("ix_projector_held_message_id", table_name="projector_held")
    op.drop_index("ix_projector_held_carrier_message", table_name="projector_held")
    op.drop_table("projector_held")
    op.drop_index("ix_projector_correlations_message_id", table_name="projector_correlations")
    op.drop_table("projector_correlations")
    op.drop_index("ix_mismatches_open_subject_kind", table_name="mismatches")
    op.drop_index("ix_mismatches_status_kind", table_name="mismatches")
    op.drop_index("ix_mismatches_message_id", table_name="mismatches")
    op.drop_table("mismatches")
    op.drop_table("message_state")
