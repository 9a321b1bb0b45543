"""The daily reports and the public views are two implementations of the same sums (Python
over the decimal columns, SQL over the integer ones): over one seeded month their totals
must agree to the minor unit, on both engines.

The month is the benchmark's (``bench/report_month.py``) at a few thousand messages: five
routes and four currencies, refusals with no carrier, pending statuses, free and unpriced
messages, DLR costs in another currency than the rate card's, invoices, FX-missing days,
and messages of the month before that neither may count.
"""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from click.testing import CliRunner
from sqlalchemy import text

from bench.report_month import Month, seed
from pipeline.cli.main import cli
from pipeline.db.engine import Database

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
MONTH = Month(START, END, 3000)


def _seeded(db: Database) -> None:
    seed(db, MONTH, seed=7, before=300)


def _report(tmp_path: Path, db_url: str, name: str) -> list[dict[str, str]]:
    config = tmp_path / "config.yaml"
    config.write_text("finance:\n  reporting_currency: EUR\n")
    args = ["--config", str(config), "--database-url", db_url, "report", name,
            "--from", "2026-01-01", "--to", "2026-02-01", "--format", "csv"]  # fmt: skip
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    return list(csv.DictReader(io.StringIO(result.stdout)))


def _view(db: Database, view: str) -> list[dict[str, Any]]:
    sql = f"SELECT * FROM {view} WHERE day >= '2026-01-01' AND day < '2026-02-01'"
    with db.read() as conn:
        return [dict(row._mapping) for row in conn.execute(text(sql))]


def _totals(rows: Iterable[dict[str, Any]], by: str | None, columns: Iterable[str]) -> dict:
    """Each column's sum, per value of ``by`` (None: one total), as exact Decimals. An empty
    cell or NULL adds 0: a sum over no amounts is 0 in a report and NULL in a view."""
    sums: dict[Any, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        key = row[by] if by else None
        for column in columns:
            value = row[column]
            sums[key][column] += Decimal(0 if value in (None, "") else str(value))
    return {key: dict(values) for key, values in sums.items()}


def test_billing_report_and_view_agree_per_currency(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _seeded(db)
    columns = ("messages", "parts", "charged_messages", "charged_parts", "payment_sum")
    report = _totals(_report(tmp_path, db_url, "billing"), "currency_iso", columns)
    view = _totals(_view(db, "v_billing_daily"), "currency_iso", columns)
    assert report == view
    assert set(report) == {"RUB", "KZT", "EUR", "GBP"}


def test_delivery_report_and_view_agree_per_carrier(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _seeded(db)
    columns = ("messages", "delivered", "not_delivered", "rejected", "no_funds", "in_progress")
    report = _totals(_report(tmp_path, db_url, "delivery"), "carrier", columns)
    view = _totals(_view(db, "v_delivery_daily"), "carrier", columns)
    # The report also has a row for messages no carrier took (refused, or not submitted
    # yet), with an empty carrier; the view leaves them out (docs/reports.md).
    no_carrier = report.pop("")
    assert report == view
    with db.read() as conn:
        count = conn.execute(text(
            "SELECT count(*) FROM message_state WHERE carrier IS NULL "
            f"AND accepted_at >= '{_stored(db, START)}' AND accepted_at < '{_stored(db, END)}'"
        )).scalar_one()  # fmt: skip
    assert no_carrier["messages"] == count > 0


def test_delivery_rate_of_report_and_view_agree(db: Database, db_url: str, tmp_path: Path) -> None:
    _seeded(db)

    def rate(value: object) -> Decimal | None:
        return None if value in (None, "") else Decimal(str(value))

    report = {(r["day"], r["carrier"]): rate(r["delivery_rate"])
              for r in _report(tmp_path, db_url, "delivery") if r["carrier"]}  # fmt: skip
    view = {(r["day"], r["carrier"]): rate(r["delivery_rate"])
            for r in _view(db, "v_delivery_daily")}  # fmt: skip
    assert report == view
    assert any(value is not None for value in report.values())


def _stored(db: Database, moment: datetime) -> str:
    """A time as a literal each engine compares with its stored times."""
    if db.engine.dialect.name == "sqlite":
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment.isoformat()


COST_COLUMNS = ("messages", "parts", "expected_cost", "reported_cost", "invoiced_cost",
                "difference")  # fmt: skip
#: Its rate card is in KZT and its DLRs report costs in EUR.
TWO_CURRENCY_CARRIER = "kcell"


def _cost_totals(db: Database, db_url: str, tmp_path: Path) -> tuple[dict, dict]:
    report = _report(tmp_path, db_url, "costs")
    view = _view(db, "v_carrier_costs")
    for row in (*report, *view):
        row["key"] = (row["carrier"], row["currency"])
    return _totals(report, "key", COST_COLUMNS), _totals(view, "key", COST_COLUMNS)


def test_costs_report_and_view_agree_for_carriers_with_one_currency(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _seeded(db)
    report, view = _cost_totals(db, db_url, tmp_path)

    def one_currency(totals: dict) -> dict:
        return {k: v for k, v in totals.items() if k[0] != TWO_CURRENCY_CARRIER}

    assert one_currency(report) == one_currency(view)
    assert len(one_currency(report)) == 5


def test_costs_report_and_view_agree_for_a_carrier_with_two_currencies(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _seeded(db)
    report, view = _cost_totals(db, db_url, tmp_path)
    ours = {k: v for k, v in report.items() if k[0] == TWO_CURRENCY_CARRIER}
    assert ours == {k: v for k, v in view.items() if k[0] == TWO_CURRENCY_CARRIER}


def test_margin_report_and_view_agree_per_carrier_and_country(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _seeded(db)
    columns = ("messages", "revenue", "cost", "margin", "fx_missing")
    report = _report(tmp_path, db_url, "margin")
    view = _view(db, "v_margin_daily")
    for row in (*report, *view):
        row["key"] = (row["carrier"] or None, row["country"])
    assert _totals(report, "key", columns) == _totals(view, "key", columns)
