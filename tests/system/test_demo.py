"""`smsrecon demo` runs the whole pipeline and shows what Altegio and finance would see."""

from __future__ import annotations

import csv
import re
import shlex
import subprocess
import sys
from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal
from pathlib import Path

from sqlalchemy import text

from pipeline.dashboard.downloads import write_report
from pipeline.dashboard.filters import period_filters
from pipeline.dashboard.queries import disputes
from pipeline.db.engine import Database

NANO = Decimal("0.000000001")
EUR_RUB = Decimal("92.40")  # pipeline/demo/data/fx_rates.csv, both demo days


def test_demo_runs_end_to_end_and_prints_the_results(db_url: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--url", db_url,
         "--database", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "14 requests -> 13 events (1 resent report stored once)" in out
    assert "Altegio (sandbox) accepted 8 status objects" in out
    rows = {line.split()[0]: line for line in out.splitlines() if line[:6].isdigit()}
    assert "2 / 4.90 RUB / 2p" in rows["232675"]  # two-part Cyrillic text, expired
    assert "52 / 0.00 RUB / 1p" in rows["232679"]  # refused: not enough funds, free of charge
    assert "1 / 0.00 RUB / 1p" in rows["232680"]  # a free message is sent with a zero sum
    assert "nothing (not sendable)" in rows["232682"]  # no tariff: never sent without a price
    assert "conflicting_final      message 232681" in out
    assert "no_tariff              message 232682" in out
    assert "Exchange rates to EUR (fx_rates.csv, as `fx import`): appended 8, duplicates 0" in out
    assert "Carrier invoice MTS-2026-01 from mts" in out
    assert "version 1: read 3, appended 3, quarantined 0, closed" in out
    assert "duplicate_charge       message 232675   at stake 3.70 RUB (invoice MTS-2026-01)" in out
    assert "demo-partner-token" not in out + result.stderr
    config = tmp_path / "demo.yaml"
    explained = subprocess.run(
        [sys.executable, "-m", "pipeline", "--config", str(config), "explain", "232681"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert explained.returncode == 0, explained.stderr
    trail = explained.stdout
    assert trail.index("Events") < trail.index("State") < trail.index("Dispatch attempts")
    assert "conflicting_final" in trail
    assert "-> 200: acknowledged" in trail


def test_the_demo_s_printed_follow_ups_run_as_printed(tmp_path: Path) -> None:
    """`make demo` does not activate .venv: the commands it suggests must work without it."""
    database = tmp_path / "demo.db"
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--database", str(database)],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    follow_ups = result.stdout.split("Next:")[1].split("Dashboard for this database")[0]
    commands = re.findall(r"`([^`]+)`", follow_ups)
    assert len(commands) == 2 and all(" --config " in c for c in commands), commands
    for command in commands:
        argv = shlex.split(command)
        followed = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert followed.returncode == 0, (command, followed.stderr)
        assert followed.stdout.strip()


def _eur_nano(rub: str) -> int:
    """A RUB amount in EUR as the projector keeps it: divided by the day's rate, to 10^-9."""
    return int((Decimal(rub) / EUR_RUB).quantize(NANO, ROUND_HALF_EVEN) / NANO)


def test_the_demo_s_database_holds_margins_disputes_and_the_path_to_a_message(
    db_url: str, tmp_path: Path
) -> None:
    """Issue 13's "done when" on the demo's own database: margins in EUR, money disputes with
    an amount at stake, and the most expensive one leads to a message and the month's
    billing report (what the dashboard's pages read)."""
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", "--url", db_url,
         "--database", str(tmp_path / "demo.db")],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    database = Database.from_url(db_url)
    try:
        with database.read() as conn:
            margins = conn.execute(
                text(
                    "SELECT day, carrier, country, revenue_nano, margin_nano, fx_missing "
                    "FROM v_margin_daily"
                )
            ).all()
            money = conn.execute(
                text(
                    "SELECT kind, message_id, amount_at_stake_nano, currency, invoice_id "
                    "FROM v_open_mismatches WHERE amount_at_stake_nano IS NOT NULL"
                )
            ).all()
            month = period_filters("month", date(2026, 1, 15))
            top = disputes(conn, month)[0].rows[0]
            status = conn.execute(
                text("SELECT carrier, status FROM v_message_status WHERE message_id = :m"),
                {"m": top.message_id},
            ).one()
        billing = write_report(database, "billing", "csv", month, "EUR", tmp_path)
    finally:
        database.dispose()

    assert {str(r.day)[:10] for r in margins} == {"2026-01-15"}
    assert not any(r.fx_missing for r in margins)
    sold = {r.carrier: r for r in margins if r.carrier and r.country != "FR"}
    assert set(sold) == {"mts", "jasmin", "infobip", "vonage", "twilio"}
    assert all(r.revenue_nano is not None and r.margin_nano is not None for r in sold.values())
    # mts: 2.45 + 4.90 + 2.45 RUB acknowledged by Altegio, each converted on its own.
    assert sold["mts"].revenue_nano == sum(_eur_nano(x) for x in ("2.45", "4.90", "2.45"))
    # jasmin's message is free: no revenue, and the rate card's 0.98 RUB is a loss.
    assert sold["jasmin"].revenue_nano == 0 and sold["jasmin"].margin_nano == -_eur_nano("0.98")
    # France has no tariff: never sold, so no revenue and no margin (not a made-up one).
    (france,) = [r for r in margins if r.country == "FR"]
    assert france.revenue_nano is None and france.margin_nano is None

    at_stake = {(r.kind, r.message_id): (r.amount_at_stake_nano, r.currency) for r in money}
    assert at_stake == {
        ("duplicate_charge", "232675"): (3_700_000_000, "RUB"),
        ("cost_mismatch", "232675"): (1_600_000_000, "RUB"),
        ("missing_invoice_line", "232681"): (1_050_000_000, "RUB"),
        ("invoice_total_mismatch", None): (350_000_000, "RUB"),
    }
    assert {r.invoice_id for r in money} == {"MTS-2026-01"}

    # The disputes page's top row, its message, and the month's billing report.
    assert (top.kind, top.message_id, top.amount) == (
        "duplicate_charge", "232675", Decimal("3.7")
    )  # fmt: skip
    assert status.carrier == "mts" and status.status == 2
    with billing.open(encoding="utf-8", newline="") as file:
        rows = list(csv.DictReader(file))
    assert billing.name == "billing_2026-01-01_2026-01-31.csv"
    assert rows and {r["day"] for r in rows} == {"2026-01-15"}
