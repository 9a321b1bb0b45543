"""Pinned report runs and closed periods: ``report_runs`` and ``report_periods``.

Revision ID: 0009_report_runs
Revises: 0008_reporting
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.tables import BigId
from pipeline.db.types import JSONDocument, UTCDateTime

revision = "0009_report_runs"
down_revision = "0008_reporting"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "report_runs",
        sa.Column("id", BigId, autoincrement=True, nullable=False),
        sa.Column("report", sa.String(32), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("params", JSONDocument, nullable=False),
        sa.Column("as_of_position", sa.BigInteger(), nullable=False),
        sa.Column("rows", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("canonical_gz", sa.LargeBinary(), nullable=False),
        sa.Column("period", sa.String(7), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("event_position", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_report_runs"),
        sqlite_autoincrement=True,
    )
    op.create_table(
        "report_periods",
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("runs", JSONDocument, nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.Column("changed_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("period", name="pk_report_periods"),
    )


def downgrade() -> None:
    op.drop_table("report_periods")
    op.drop_table("report_runs")
