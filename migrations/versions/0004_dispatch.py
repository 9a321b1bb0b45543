"""Dispatch: deliveries and partner circuits.

Revision ID: 0004_dispatch
Revises: 0003_projection
Create Date: 2026-11-28
"""

from __future__ import annotations

revision = "0004_dispatch"
down_revision = "0003_projection"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
