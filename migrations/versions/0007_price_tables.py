"""Price tables: every billing.tariffs table and carrier rate card in force, as the log
records it (``prices.recorded`` events), so a message is priced by the table in force before
it was accepted and a rebuild reproduces history.

Revision ID: 0007_price_tables
Revises: 0006_finance
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import JSONDocument, UTCDateTime

revision = "0007_price_tables"
down_revision = "0006_finance"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "price_tables",
        sa.Column("position", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("scope", sa.String(80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("rules", JSONDocument, nullable=False),
        sa.Column("recorded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("position", name="pk_price_tables"),
    )
    op.create_index("ix_price_tables_scope_position", "price_tables", ["scope", "position"])


def downgrade() -> None:
    op.drop_index("ix_price_tables_scope_position", table_name="price_tables")
    op.drop_table("price_tables")
