"""The dashboard's own tables: a daily rollup of ``message_state`` and its checkpoint.

The overview and margin pages need a month of the daily views (``v_margin_daily``,
``v_delivery_daily``, ``v_billing_daily``), which sum every message of the month on each
read. ``dashboard_daily`` keeps those sums per day and per (partner, carrier, country,
currency), as exact integers, so a page sums a few thousand rows instead of a million
messages. It is derived (``pipeline.dashboard.rollup`` keeps it up to date and can rebuild
it whole), owned by nothing else, and never read by the views or the reports.

The index on ``message_state.last_position`` is the rollup's way to the messages changed
since its checkpoint; it is declared here, beside its only reader.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, Integer, String, Table

from pipeline.db.tables import metadata
from pipeline.db.types import UTCDateTime
from pipeline.projector.tables import message_state

#: One row per (day, partner, carrier, country, currency_iso) with accepted messages.
#: The key columns may be NULL (as in the views), so the table has no primary key; a day's
#: rows are always replaced together.
dashboard_daily = Table(
    "dashboard_daily",
    metadata,
    # The UTC day of accepted_at, 'YYYY-MM-DD' (the views' ``day``).
    Column("day", String(10), nullable=False),
    Column("partner", String(64), nullable=True),
    Column("carrier", String(64), nullable=True),
    Column("country", String(3), nullable=True),
    Column("currency_iso", String(3), nullable=True),
    Column("messages", BigInteger(), nullable=False),
    # Sums of the *_reporting_nano columns; NULL when every message's amount is NULL (SQL's
    # sum, which a sum of these sums repeats exactly).
    Column("revenue_nano", BigInteger(), nullable=True),
    Column("cost_nano", BigInteger(), nullable=True),
    Column("margin_nano", BigInteger(), nullable=True),
    Column("fx_missing", BigInteger(), nullable=False),
    # Delivery: status 1, and final messages (the rest are in progress).
    Column("delivered", BigInteger(), nullable=False),
    Column("finals", BigInteger(), nullable=False),
    # Billing, over the messages with a price (payment_sum_minor not NULL) only.
    Column("priced", BigInteger(), nullable=False),
    Column("priced_parts", BigInteger(), nullable=True),
    Column("charged", BigInteger(), nullable=False),
    Column("payment_sum_minor", BigInteger(), nullable=True),
    Column("currency_exponent", Integer(), nullable=True),
    Index("ix_dashboard_daily_day", "day"),
)

#: The rollup's checkpoint: every message whose last_position is at or below ``position``
#: is counted in ``dashboard_daily`` as it was then.
dashboard_rollup = Table(
    "dashboard_rollup",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("position", BigInteger(), nullable=False),
    Column("refreshed_at", UTCDateTime(), nullable=False),
)

ix_message_state_last_position = Index(
    "ix_message_state_last_position", message_state.c.last_position
)
