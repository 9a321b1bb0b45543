"""Ingest: the quarantine of requests that could not be parsed.

Revision ID: 0002_ingest
Revises: 0001_event_log
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0002_ingest"
down_revision = "0001_event_log"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
