"""Ingest: the quarantine of requests that could not be parsed.

Revision ID: 0002_ingest
Revises: 0001_event_log
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import JSONDocument, UTCDateTime

revision = "0002_ingest"
down_revision = "0001_event_log"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "quarantine",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.Column("source", sa.String(128), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=True),
        sa.Column("format", sa.String(32), nullable=True),
        sa.Column("method", sa.String(16), nullable=False),
        sa.Column("path", sa.String(512), nullable=False),
        sa.Column("query", JSONDocument, nullable=False),
        sa.Column("headers", JSONDocument, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("body_encoding", sa.String(16), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("detail", JSONDocument, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.Column("resolved_positions", JSONDocument, nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_quarantine"),
        sa.CheckConstraint("status IN ('open', 'resolved')", name="ck_quarantine_status"),
        sa.CheckConstraint(
            "body_encoding IN ('utf-8', 'base64')", name="ck_quarantine_body_encoding"
        ),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_quarantine_status_id", "quarantine", ["status", "id"])


def downgrade() -> None:
    op.drop_index("ix_quarantine_status_id", table_name="quarantine")
    op.drop_table("quarantine")
