"""Finance: three carrier costs, acknowledged revenue and margins per message; invoices,
their lines and FX rates as projections; money at stake on mismatches.

Every new ``message_state`` column is derived from the log, so an upgraded database shows
NULLs (and ``fx_missing`` false) until ``smsrecon replay --rebuild`` folds the log again;
the projector fills them from then on. The open-mismatch uniqueness gains ``origin``: a
message's parts can disagree with its text and with its invoice at the same time.

Revision ID: 0006_finance
Revises: 0005_immutability
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.types import Money, UTCDateTime

revision = "0006_finance"
down_revision = "0005_immutability"
branch_labels = None
depends_on = None

STATE_COLUMNS = [
    ("carrier_cost_source", sa.String(16)),
    ("carrier_cost_expected", Money()),
    ("carrier_cost_expected_currency", sa.String(3)),
    ("carrier_cost_reported", Money()),
    ("carrier_cost_reported_currency", sa.String(3)),
    ("carrier_cost_invoiced", Money()),
    ("carrier_cost_invoiced_currency", sa.String(3)),
    ("acked_payment_sum", Money()),
    ("acked_currency_iso", sa.String(3)),
    ("acked_status", sa.Integer()),
    ("margin", Money()),
    ("margin_currency", sa.String(3)),
    ("revenue_reporting", Money()),
    ("cost_reporting", Money()),
    ("margin_reporting", Money()),
    ("submitted_at", UTCDateTime()),
]

OPEN = "status = 'open'"


def upgrade() -> None:
    with op.batch_alter_table("message_state") as batch:
        for name, type_ in STATE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
        batch.add_column(
            sa.Column("fx_missing", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_index("ix_message_state_accepted_at", "message_state", ["accepted_at"])
    op.create_index(
        "ix_message_state_carrier_submitted_at", "message_state", ["carrier", "submitted_at"]
    )

    with op.batch_alter_table("mismatches") as batch:
        batch.add_column(sa.Column("amount_at_stake", Money(), nullable=True))
        batch.add_column(sa.Column("amount_currency", sa.String(3), nullable=True))
        batch.add_column(sa.Column("invoice_id", sa.String(80), nullable=True))
    op.create_index("ix_mismatches_invoice_id", "mismatches", ["invoice_id"])
    op.drop_index("ix_mismatches_open_subject_kind", table_name="mismatches")
    op.create_index(
        "ix_mismatches_open_subject_kind_origin",
        "mismatches",
        ["subject", "kind", "origin"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )

    op.create_table(
        "invoices",
        sa.Column("invoice_id", sa.String(80), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("period_from", UTCDateTime(), nullable=True),
        sa.Column("period_to", UTCDateTime(), nullable=True),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("stated_total", Money(), nullable=True),
        sa.Column("lines", sa.Integer(), nullable=False),
        sa.Column("lines_total", Money(), nullable=True),
        sa.Column("sha256", sa.String(64), nullable=True),
        sa.Column("closed", sa.Boolean(), nullable=False),
        sa.Column("closed_at", UTCDateTime(), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", name="pk_invoices"),
    )
    op.create_table(
        "invoice_lines",
        sa.Column("invoice_id", sa.String(80), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(64), nullable=False),
        sa.Column("carrier_message_id", sa.String(128), nullable=True),
        sa.Column("message_id", sa.String(128), nullable=True),
        sa.Column("billed_at", UTCDateTime(), nullable=True),
        sa.Column("destination", sa.String(128), nullable=True),
        sa.Column("parts", sa.Integer(), nullable=False),
        sa.Column("cost", Money(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("invoice_id", "version", "line", name="pk_invoice_lines"),
    )
    op.create_index("ix_invoice_lines_message_id", "invoice_lines", ["message_id"])
    op.create_index("ix_invoice_lines_position", "invoice_lines", ["position"])
    op.create_table(
        "fx_rates",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("base", sa.String(3), nullable=False),
        sa.Column("quote", sa.String(3), nullable=False),
        sa.Column("rate", Money(), nullable=False),
        sa.Column("source", sa.String(128), nullable=True),
        sa.Column("position", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("day", "base", "quote", name="pk_fx_rates"),
    )


def downgrade() -> None:
    op.drop_table("fx_rates")
    op.drop_index("ix_invoice_lines_position", table_name="invoice_lines")
    op.drop_index("ix_invoice_lines_message_id", table_name="invoice_lines")
    op.drop_table("invoice_lines")
    op.drop_table("invoices")
    op.drop_index("ix_mismatches_open_subject_kind_origin", table_name="mismatches")
    op.drop_index("ix_mismatches_invoice_id", table_name="mismatches")
    with op.batch_alter_table("mismatches") as batch:
        batch.drop_column("invoice_id")
        batch.drop_column("amount_currency")
        batch.drop_column("amount_at_stake")
    op.create_index(
        "ix_mismatches_open_subject_kind",
        "mismatches",
        ["subject", "kind"],
        unique=True,
        sqlite_where=sa.text(OPEN),
        postgresql_where=sa.text(OPEN),
    )
    op.drop_index("ix_message_state_carrier_submitted_at", table_name="message_state")
    op.drop_index("ix_message_state_accepted_at", table_name="message_state")
    with op.batch_alter_table("message_state") as batch:
        batch.drop_column("fx_missing")
        for name, _type in reversed(STATE_COLUMNS):
            batch.drop_column(name)
