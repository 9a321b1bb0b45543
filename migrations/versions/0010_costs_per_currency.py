"""v_carrier_costs: one row per currency a cost is in, so no cost falls out of every row.

0008 put a message under the currency of the cost finance uses and summed each of its
costs only when in that currency: a rate-card cost in KZT of a message whose DLR cost is in
EUR was in no row. Now a message counts once in each currency any of its three costs is
in, and each cost is summed in its own currency's row (what ``smsrecon report costs``
does); ``difference`` is invoiced − expected over the messages with both in that currency.
Messages without any cost are in no row.

Revision ID: 0010_costs_per_currency
Revises: 0009_report_runs
Create Date: 2026-11-30
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from alembic import op

from pipeline.db.backend import Backend, backend_named

revision = "0010_costs_per_currency"
down_revision = "0009_report_runs"
branch_labels = None
depends_on = None

NANO = 9


def _units(expr: str) -> str:
    return f"CAST({expr} AS BIGINT)"


def carrier_costs(b: Backend) -> str:
    def dec(units: str) -> str:
        return b.units_as_decimal_sql(units, NANO)

    def in_row(kind: str) -> str:
        return (
            f"CASE WHEN m.carrier_cost_{kind}_currency = c.currency "
            f"THEN m.carrier_cost_{kind}_nano END"
        )

    both = (
        "CASE WHEN m.carrier_cost_invoiced_currency = c.currency "
        "AND m.carrier_cost_expected_currency = c.currency "
        "THEN m.carrier_cost_invoiced_nano - m.carrier_cost_expected_nano END"
    )
    where = "accepted_at IS NOT NULL AND carrier IS NOT NULL"
    currencies = " UNION ".join(
        f"SELECT message_id, carrier_cost_{kind}_currency AS currency FROM message_state "
        f"WHERE {where} AND carrier_cost_{kind}_currency IS NOT NULL"
        for kind in ("expected", "reported", "invoiced")
    )
    return f"""
SELECT day, carrier, currency, messages, parts,
  {dec("expected_cost_nano")} AS expected_cost, {dec("reported_cost_nano")} AS reported_cost,
  {dec("invoiced_cost_nano")} AS invoiced_cost, {dec("difference_nano")} AS difference,
  expected_cost_nano, reported_cost_nano, invoiced_cost_nano, difference_nano
FROM (
  SELECT {b.utc_day_sql("m.accepted_at")} AS day, m.carrier AS carrier, c.currency AS currency,
    count(*) AS messages, {_units("sum(m.parts_amount)")} AS parts,
    {_units(f"sum({in_row('expected')})")} AS expected_cost_nano,
    {_units(f"sum({in_row('reported')})")} AS reported_cost_nano,
    {_units(f"sum({in_row('invoiced')})")} AS invoiced_cost_nano,
    {_units(f"sum({both})")} AS difference_nano
  FROM ({currencies}) c
  JOIN message_state m ON m.message_id = c.message_id
  GROUP BY 1, 2, 3
) costs
"""


def _previous() -> object:
    """0008's definitions, for the downgrade."""
    path = Path(__file__).with_name("0008_reporting.py")
    spec = importlib.util.spec_from_file_location("smsrecon_0008_reporting", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def upgrade() -> None:
    backend = backend_named(op.get_bind().dialect.name)
    op.execute("DROP VIEW IF EXISTS v_carrier_costs")
    op.execute(f"CREATE VIEW v_carrier_costs AS {carrier_costs(backend)}")


def downgrade() -> None:
    backend = backend_named(op.get_bind().dialect.name)
    op.execute("DROP VIEW IF EXISTS v_carrier_costs")
    op.execute(f"CREATE VIEW v_carrier_costs AS {_previous().carrier_costs(backend)}")  # type: ignore[attr-defined]
