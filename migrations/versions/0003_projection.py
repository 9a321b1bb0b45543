"""Projection: message_state, correlations, held reports, mismatches, checkpoints.

Revision ID: 0003_projection
Revises: 0002_ingest
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0003_projection"
down_revision = "0002_ingest"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
