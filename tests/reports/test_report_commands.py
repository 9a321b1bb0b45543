"""Reports, pinned runs and period close, through the CLI on both engines."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from pipeline.eventlog import append
from tests.projector.events import accepted, report, submitted

CONFIG = """
billing:
  tariffs:
    - {prefix: "+7", price_per_part: "2.27", currency: RUB}
    - {prefix: "+44", price_per_part: "0.045", currency: GBP}
"""
MONTH = ("--from", "2026-01-01", "--to", "2026-02-01")


def _run(tmp_path: Path, db_url: str, *args: str):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG)
    return CliRunner().invoke(cli, ["--config", str(path), "--database-url", db_url, *args])


def _traffic(db: Database) -> None:
    append(
        db,
        [
            accepted("m1"),
            submitted("m1", "c1"),
            report("c1", 1, 3, cost="0.10", currency="RUB"),
            accepted("m2", 5, text="x" * 200),
            submitted("m2", "c2", 6),
            accepted("m3", 7, phone="+442071234567", partner="uk"),
            submitted("m3", "c3", 8, carrier="bt"),
        ],
    )


def _projected(db: Database, db_url: str, tmp_path: Path) -> None:
    _traffic(db)
    assert _run(tmp_path, db_url, "project").exit_code == 0


def _csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def test_billing_csv_sums_exactly_per_day_partner_currency(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _projected(db, db_url, tmp_path)
    result = _run(tmp_path, db_url, "report", "billing", *MONTH, "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = _csv(result.stdout)
    assert rows == [
        {"day": "2026-01-15", "partner": "default", "currency_iso": "RUB", "messages": "2",
         "parts": "3", "charged_messages": "2", "charged_parts": "3", "payment_sum": "6.81"},
        {"day": "2026-01-15", "partner": "uk", "currency_iso": "GBP", "messages": "1",
         "parts": "1", "charged_messages": "1", "charged_parts": "1", "payment_sum": "0.05"},
    ]  # fmt: skip
    assert result.stdout.splitlines()[0].startswith("day,partner,currency_iso,messages")


def test_partner_and_carrier_filters(db: Database, db_url: str, tmp_path: Path) -> None:
    _projected(db, db_url, tmp_path)
    result = _run(tmp_path, db_url, "report", "billing", *MONTH, "--partner", "uk",
                  "--format", "csv")  # fmt: skip
    assert [r["partner"] for r in _csv(result.stdout)] == ["uk"]
    result = _run(tmp_path, db_url, "report", "delivery", *MONTH, "--carrier", "mts",
                  "--format", "csv")  # fmt: skip
    # One delivered of the one final message: the one in flight is no failure yet.
    assert _csv(result.stdout) == [
        {"day": "2026-01-15", "carrier": "mts", "messages": "2", "delivered": "1",
         "not_delivered": "0", "rejected": "0", "no_funds": "0", "in_progress": "1",
         "delivery_rate": "1"},
    ]  # fmt: skip


def test_costs_margin_mismatches_invoices_and_messages_run_in_every_text_format(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _projected(db, db_url, tmp_path)
    for name in ("costs", "margin", "mismatches", "invoices", "messages"):
        for fmt in ("table", "csv", "json"):
            result = _run(tmp_path, db_url, "report", name, *MONTH, "--format", fmt)
            assert result.exit_code == 0, (name, fmt, result.output)
    costs = _csv(_run(tmp_path, db_url, "report", "costs", *MONTH, "--format", "csv").stdout)
    assert costs == [
        {"day": "2026-01-15", "carrier": "mts", "currency": "RUB", "messages": "1",
         "parts": "1", "expected_cost": "0", "reported_cost": "0.1", "invoiced_cost": "0",
         "difference": "0"},
    ]  # fmt: skip
    margin = _csv(_run(tmp_path, db_url, "report", "margin", *MONTH, "--format", "csv").stdout)
    assert {(r["partner"], r["country"], r["currency"]) for r in margin} == {
        ("default", "RU", "EUR"),
        ("uk", "GB", "EUR"),
    }
    items = json.loads(_run(tmp_path, db_url, "report", "messages", *MONTH,
                            "--format", "json").stdout)  # fmt: skip
    assert [(i["message_id"], i["payment_sum"]) for i in items] == [
        ("m1", "2.27"),
        ("m2", "4.54"),
        ("m3", "0.05"),
    ]
    assert all(isinstance(i["last_position"], int) for i in items)


def test_parquet_has_an_explicit_decimal_schema_and_exact_values(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _projected(db, db_url, tmp_path)
    out = tmp_path / "billing.parquet"
    result = _run(tmp_path, db_url, "report", "billing", *MONTH, "--format", "parquet",
                  "--output", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    table = pq.read_table(out)
    assert table.schema.field("payment_sum").type == pa.decimal128(38, 9)
    assert table.schema.field("day").type == pa.date32()
    assert table.schema.field("messages").type == pa.int64()
    assert table.column("payment_sum").to_pylist() == [Decimal("6.81"), Decimal("0.05")]
    refused = _run(tmp_path, db_url, "report", "billing", *MONTH, "--format", "parquet")
    assert refused.exit_code == 2


def test_saved_run_verifies_and_a_late_report_shows_in_diff(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _projected(db, db_url, tmp_path)
    saved = _run(tmp_path, db_url, "report", "delivery", *MONTH, "--format", "csv", "--save")
    assert saved.exit_code == 0, saved.output
    assert "saved as run 1" in saved.stderr
    append(db, [report("c2", 2, 9)])
    assert _run(tmp_path, db_url, "project").exit_code == 0
    verified = _run(tmp_path, db_url, "report", "verify", "1")
    assert verified.exit_code == 0, verified.output
    assert "verified" in verified.output
    diff = _run(tmp_path, db_url, "report", "diff", "1")
    assert diff.exit_code == 0, diff.output
    assert "m2  position" in diff.output and "carrier.status: status=2" in diff.output
    assert "1 change(s)" in diff.output
    assert _run(tmp_path, db_url, "report", "verify", "99").exit_code == 2


def test_verify_exits_1_with_the_differing_rows_when_the_rebuild_differs(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _projected(db, db_url, tmp_path)
    assert _run(tmp_path, db_url, "report", "billing", *MONTH, "--save").exit_code == 0
    # A tariff edit no longer reprices the past (prices come from the log); a rule the
    # log does not record still does: here delivered messages become free of charge.
    changed = tmp_path / "changed.yaml"
    changed.write_text(CONFIG + "  non_chargeable_statuses: [1, 16, 52]\n")
    result = CliRunner().invoke(
        cli, ["--config", str(changed), "--database-url", db_url, "report", "verify", "1"]
    )
    assert result.exit_code == 1, result.output
    assert "- pinned:  2026-01-15,default,RUB,2,3,2,3,6.81" in result.output
    # The one-part delivered message (2.27) is free now: 1 charged message, 2 parts, 4.54.
    assert "+ rebuilt: 2026-01-15,default,RUB,2,3,1,2,4.54" in result.output


def test_closed_period_stays_verifiable_after_a_late_dlr_and_corrections_show_it(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _projected(db, db_url, tmp_path)
    closed = _run(tmp_path, db_url, "period", "close", "2026-01", "--note", "January")
    assert closed.exit_code == 0, closed.output
    assert "period 2026-01 closed" in closed.output
    runs = {line.split(",")[0].split(": ")[1]: line.split(":")[0].split()[1]
            for line in closed.output.splitlines() if line.startswith("run ")}  # fmt: skip
    assert set(runs) == {"billing", "delivery", "costs", "margin", "mismatches", "invoices",
                         "messages"}  # fmt: skip
    again = _run(tmp_path, db_url, "period", "close", "2026-01")
    assert again.exit_code == 2 and "already closed" in again.output

    append(db, [report("c2", 1, 30)])  # a late DLR: m2 delivered
    assert _run(tmp_path, db_url, "project").exit_code == 0
    for run_id in runs.values():
        verified = _run(tmp_path, db_url, "report", "verify", run_id)
        assert verified.exit_code == 0, verified.output
    found = _run(tmp_path, db_url, "report", "corrections", "--period", "2026-01",
                 "--format", "csv")  # fmt: skip
    assert found.exit_code == 0, found.output
    assert _csv(found.stdout) == [
        {"message_id": "m2", "field": "status", "closed": "8", "current": "1"},
        {"message_id": "m2", "field": "is_final", "closed": "false", "current": "true"},
    ]


def test_reopen_needs_a_note_and_a_closed_period(db: Database, db_url: str, tmp_path: Path) -> None:
    _projected(db, db_url, tmp_path)
    assert _run(tmp_path, db_url, "period", "reopen", "2026-01", "--note", "x").exit_code == 2
    assert _run(tmp_path, db_url, "period", "close", "2026-01").exit_code == 0
    assert _run(tmp_path, db_url, "period", "reopen", "2026-01").exit_code == 2
    reopened = _run(tmp_path, db_url, "period", "reopen", "2026-01", "--note", "late invoice")
    assert reopened.exit_code == 0, reopened.output
    assert _run(tmp_path, db_url, "period", "close", "2026-01").exit_code == 0
    assert _run(tmp_path, db_url, "report", "corrections", "--period", "2025-12").exit_code == 2
