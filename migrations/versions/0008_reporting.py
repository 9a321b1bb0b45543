"""Reporting: integer money columns beside the decimal text, the country, and the public
views finance and BI tools query (``v_message_status``, ``v_billing_daily``,
``v_delivery_daily``, ``v_carrier_costs``, ``v_margin_daily``, ``v_open_mismatches``,
``v_invoices``).

The views sum integers (a price's minor units, a cost's 10^-9 units) and show the sums as
exact decimals: NUMERIC on PostgreSQL, decimal text on SQLite, never a float, the same digits
on both; each amount also has its integer column (``*_minor``, ``*_nano``) for tools that
want a typed number on SQLite. Every difference between the engines is one of the backend's
``*_sql`` methods, so each view is written once. ``day`` is the UTC day of ``accepted_at``
as ``YYYY-MM-DD`` text on both engines.

The new columns are derived from the log: an upgraded database shows NULLs until
``smsrecon replay --rebuild`` folds it again.

Revision ID: 0008_reporting
Revises: 0007_price_tables
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from pipeline.db.backend import Backend, backend_named

revision = "0008_reporting"
down_revision = "0007_price_tables"
branch_labels = None
depends_on = None

STATE_COLUMNS = [
    ("payment_sum_minor", sa.BigInteger()),
    ("currency_exponent", sa.Integer()),
    ("acked_payment_sum_minor", sa.BigInteger()),
    ("acked_currency_exponent", sa.Integer()),
    ("carrier_cost_nano", sa.BigInteger()),
    ("carrier_cost_expected_nano", sa.BigInteger()),
    ("carrier_cost_reported_nano", sa.BigInteger()),
    ("carrier_cost_invoiced_nano", sa.BigInteger()),
    ("margin_nano", sa.BigInteger()),
    ("revenue_reporting_nano", sa.BigInteger()),
    ("cost_reporting_nano", sa.BigInteger()),
    ("margin_reporting_nano", sa.BigInteger()),
    ("country", sa.String(3)),
]

#: Altegio's codes and their names (as ``pipeline.domain.status.STATUS_NAMES`` has them
#: today; frozen here, as a migration must be).
STATUS_NAMES = {
    1: "delivered",
    2: "not_delivered",
    4: "sent_to_phone",
    8: "transferred",
    16: "rejected",
    52: "not_enough_funds",
}

NANO = 9
#: delivery_rate's decimals (an integer count of 10^-4 computed the same on both engines).
RATE = 4

VIEWS = (
    "v_message_status",
    "v_billing_daily",
    "v_delivery_daily",
    "v_carrier_costs",
    "v_margin_daily",
    "v_open_mismatches",
    "v_invoices",
)


def _units(expr: str) -> str:
    """An integer sum as a BIGINT on both engines (PostgreSQL's SUM of BIGINT is NUMERIC)."""
    return f"CAST({expr} AS BIGINT)"


def _complete(units: str) -> str:
    """The sum of ``units`` only when no row's amount is missing from it (else NULL)."""
    return f"CASE WHEN count({units}) = count(*) THEN {_units(f'sum({units})')} END"


def message_status(b: Backend) -> str:
    def dec(units: str, scale: int | str = NANO) -> str:
        return b.units_as_decimal_sql(units, scale)

    names = " ".join(f"WHEN {code} THEN '{name}'" for code, name in STATUS_NAMES.items())
    return f"""
SELECT m.message_id, m.partner, m.carrier, m.channel, m.dispatch_type, m.phone, m.country,
  m.status, CASE m.status {names} END AS status_name, m.is_final, m.parts_amount,
  {dec("m.payment_sum_minor", "m.currency_exponent")} AS payment_sum,
  m.payment_sum_minor, m.currency_exponent, m.currency_iso,
  {dec("m.carrier_cost_expected_nano")} AS expected_cost,
  m.carrier_cost_expected_nano AS expected_cost_nano,
  m.carrier_cost_expected_currency AS expected_cost_currency,
  {dec("m.carrier_cost_reported_nano")} AS reported_cost,
  m.carrier_cost_reported_nano AS reported_cost_nano,
  m.carrier_cost_reported_currency AS reported_cost_currency,
  {dec("m.carrier_cost_invoiced_nano")} AS invoiced_cost,
  m.carrier_cost_invoiced_nano AS invoiced_cost_nano,
  m.carrier_cost_invoiced_currency AS invoiced_cost_currency,
  {dec("m.carrier_cost_nano")} AS carrier_cost, m.carrier_cost_nano,
  m.carrier_cost_currency, m.carrier_cost_source,
  {dec("m.acked_payment_sum_minor", "m.acked_currency_exponent")} AS acked_revenue,
  m.acked_payment_sum_minor AS acked_revenue_minor, m.acked_currency_exponent,
  m.acked_currency_iso AS acked_currency,
  {dec("m.margin_nano")} AS margin, m.margin_nano, m.margin_currency,
  {dec("m.margin_reporting_nano")} AS margin_reporting, m.margin_reporting_nano,
  m.fx_missing, m.accepted_at,
  CASE WHEN m.is_final THEN m.status_at END AS final_at,
  CASE WHEN d.state = 'in_flight' AND d.lease_until < {b.now_sql()} THEN 'pending'
       ELSE d.state END AS delivery_state
FROM message_state m LEFT JOIN deliveries d ON d.message_id = m.message_id
"""


def billing_daily(b: Backend) -> str:
    return f"""
SELECT day, partner, currency_iso, messages, parts, charged_messages, charged_parts,
  {b.units_as_decimal_sql("payment_sum_minor", "currency_exponent")} AS payment_sum,
  payment_sum_minor, currency_exponent
FROM (
  SELECT {b.utc_day_sql("accepted_at")} AS day, partner, currency_iso,
    count(*) AS messages, {_units("sum(parts_amount)")} AS parts,
    {_units("sum(CASE WHEN payment_sum_minor > 0 THEN 1 ELSE 0 END)")} AS charged_messages,
    {_units("sum(CASE WHEN payment_sum_minor > 0 THEN parts_amount ELSE 0 END)")}
      AS charged_parts,
    {_units("sum(payment_sum_minor)")} AS payment_sum_minor,
    max(currency_exponent) AS currency_exponent
  FROM message_state
  WHERE accepted_at IS NOT NULL AND payment_sum_minor IS NOT NULL
  GROUP BY 1, 2, 3
) b
"""


def delivery_daily(b: Backend) -> str:
    def count(condition: str) -> str:
        return _units(f"sum(CASE WHEN {condition} THEN 1 ELSE 0 END)")

    # Rounded half up in integer arithmetic, identical on both engines.
    rate = f"(delivered * {2 * 10**RATE} + finals) / (2 * finals)"
    return f"""
SELECT day, carrier, messages, delivered, not_delivered, rejected, no_funds, in_progress,
  CASE WHEN finals > 0 THEN {b.units_as_decimal_sql(rate, RATE)} END AS delivery_rate
FROM (
  SELECT {b.utc_day_sql("accepted_at")} AS day, carrier, count(*) AS messages,
    {count("status = 1")} AS delivered, {count("status = 2")} AS not_delivered,
    {count("status = 16")} AS rejected, {count("status = 52")} AS no_funds,
    {count("NOT is_final")} AS in_progress, {count("is_final")} AS finals
  FROM message_state
  WHERE accepted_at IS NOT NULL AND carrier IS NOT NULL
  GROUP BY 1, 2
) d
"""


def carrier_costs(b: Backend) -> str:
    def dec(units: str) -> str:
        return b.units_as_decimal_sql(units, NANO)

    def in_row(kind: str) -> str:
        return (
            f"CASE WHEN carrier_cost_{kind}_currency = carrier_cost_currency "
            f"THEN carrier_cost_{kind}_nano END"
        )

    both = (
        "CASE WHEN carrier_cost_invoiced_currency = carrier_cost_currency "
        "AND carrier_cost_expected_currency = carrier_cost_currency "
        "THEN carrier_cost_invoiced_nano - carrier_cost_expected_nano END"
    )
    return f"""
SELECT day, carrier, currency, messages, parts,
  {dec("expected_cost_nano")} AS expected_cost, {dec("reported_cost_nano")} AS reported_cost,
  {dec("invoiced_cost_nano")} AS invoiced_cost, {dec("difference_nano")} AS difference,
  expected_cost_nano, reported_cost_nano, invoiced_cost_nano, difference_nano
FROM (
  SELECT {b.utc_day_sql("accepted_at")} AS day, carrier, carrier_cost_currency AS currency,
    count(*) AS messages, {_units("sum(parts_amount)")} AS parts,
    {_units(f"sum({in_row('expected')})")} AS expected_cost_nano,
    {_units(f"sum({in_row('reported')})")} AS reported_cost_nano,
    {_units(f"sum({in_row('invoiced')})")} AS invoiced_cost_nano,
    {_units(f"sum({both})")} AS difference_nano
  FROM message_state
  WHERE accepted_at IS NOT NULL AND carrier IS NOT NULL
  GROUP BY 1, 2, 3
) c
"""


def margin_daily(b: Backend) -> str:
    def dec(units: str) -> str:
        return b.units_as_decimal_sql(units, NANO)

    return f"""
SELECT day, partner, carrier, country, messages,
  {dec("revenue_nano")} AS revenue, {dec("cost_nano")} AS cost,
  {dec("margin_nano")} AS margin, revenue_nano, cost_nano, margin_nano, fx_missing
FROM (
  SELECT {b.utc_day_sql("accepted_at")} AS day, partner, carrier, country,
    count(*) AS messages,
    {_units("sum(revenue_reporting_nano)")} AS revenue_nano,
    {_units("sum(cost_reporting_nano)")} AS cost_nano,
    {_units("sum(margin_reporting_nano)")} AS margin_nano,
    {_units("sum(CASE WHEN fx_missing THEN 1 ELSE 0 END)")} AS fx_missing
  FROM message_state
  WHERE accepted_at IS NOT NULL
  GROUP BY 1, 2, 3, 4
) g
"""


def open_mismatches(b: Backend) -> str:
    return f"""
SELECT id, message_id, kind, origin, detail,
  {b.units_as_decimal_sql("amount_at_stake_nano", NANO)} AS amount_at_stake,
  amount_at_stake_nano, amount_currency AS currency, invoice_id, opened_at,
  {b.hours_since_sql("opened_at")} AS age_hours
FROM mismatches
WHERE status = 'open'
"""


def invoices(b: Backend) -> str:
    def dec(units: str) -> str:
        return b.units_as_decimal_sql(units, NANO)

    # A line is disputed when no message claims it, or its message has an invoice
    # mismatch open; the rest are matched (matched + disputed = lines_total).
    disputed = (
        "CASE WHEN li.message_id IS NULL OR EXISTS (SELECT 1 FROM mismatches mm "
        "WHERE mm.message_id = li.message_id AND mm.origin = 'invoice' "
        "AND mm.status = 'open') THEN 1 ELSE 0 END"
    )
    return f"""
SELECT i.invoice_id, i.carrier, i.version, i.period_from, i.period_to, i.currency,
  COALESCE(l.lines, 0) AS lines,
  {dec("i.stated_total_nano")} AS stated_total, {dec("l.lines_total_nano")} AS lines_total,
  {dec("l.matched_nano")} AS matched_amount, {dec("l.disputed_nano")} AS disputed_amount,
  i.stated_total_nano, l.lines_total_nano, l.matched_nano AS matched_amount_nano,
  l.disputed_nano AS disputed_amount_nano,
  COALESCE(o.open_mismatches, 0) AS open_mismatches, i.closed
FROM invoices i
LEFT JOIN (
  SELECT invoice_id, version, count(*) AS lines,
    {_complete("cost_nano")} AS lines_total_nano,
    CASE WHEN count(cost_nano) = count(*)
      THEN {_units("sum(CASE WHEN disputed = 0 THEN cost_nano ELSE 0 END)")} END
      AS matched_nano,
    CASE WHEN count(cost_nano) = count(*)
      THEN {_units("sum(CASE WHEN disputed = 1 THEN cost_nano ELSE 0 END)")} END
      AS disputed_nano
  FROM (SELECT li.invoice_id, li.version, li.cost_nano, {disputed} AS disputed
        FROM invoice_lines li) x
  GROUP BY invoice_id, version
) l ON l.invoice_id = i.invoice_id AND l.version = i.version
LEFT JOIN (
  SELECT invoice_id, count(*) AS open_mismatches FROM mismatches
  WHERE status = 'open' AND invoice_id IS NOT NULL GROUP BY invoice_id
) o ON o.invoice_id = i.invoice_id
"""


DEFINITIONS = {
    "v_message_status": message_status,
    "v_billing_daily": billing_daily,
    "v_delivery_daily": delivery_daily,
    "v_carrier_costs": carrier_costs,
    "v_margin_daily": margin_daily,
    "v_open_mismatches": open_mismatches,
    "v_invoices": invoices,
}


def upgrade() -> None:
    with op.batch_alter_table("message_state") as batch:
        for name, type_ in STATE_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=True))
    with op.batch_alter_table("mismatches") as batch:
        batch.add_column(sa.Column("amount_at_stake_nano", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("invoice_lines") as batch:
        batch.add_column(sa.Column("cost_nano", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("invoices") as batch:
        batch.add_column(sa.Column("stated_total_nano", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("lines_total_nano", sa.BigInteger(), nullable=True))
    backend = backend_named(op.get_bind().dialect.name)
    for name in VIEWS:
        op.execute(f"CREATE VIEW {name} AS {DEFINITIONS[name](backend)}")


def downgrade() -> None:
    # The views first: SQLite's batch mode rebuilds a table by copy and rename, which a
    # view over it would not survive, and PostgreSQL refuses to drop a column a view reads.
    for name in reversed(VIEWS):
        op.execute(f"DROP VIEW IF EXISTS {name}")
    with op.batch_alter_table("invoices") as batch:
        batch.drop_column("lines_total_nano")
        batch.drop_column("stated_total_nano")
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_column("cost_nano")
    with op.batch_alter_table("mismatches") as batch:
        batch.drop_column("amount_at_stake_nano")
    with op.batch_alter_table("message_state") as batch:
        for name, _type in reversed(STATE_COLUMNS):
            batch.drop_column(name)
