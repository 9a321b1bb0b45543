"""Prices reproducible from the log: tables recorded as events, chosen by acceptance position,
never changed by an edit of config.yaml, changed on purpose only by a logged repricing."""

from __future__ import annotations

import json
import threading
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import select

from pipeline.cli.main import cli
from pipeline.config import load_settings
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.eventlog import append
from pipeline.prices.record import record_prices
from pipeline.projector.tables import message_state
from tests.projector.events import accepted, submitted

TARIFFS = """
billing:
  tariffs:
    - {prefix: "+7", price_per_part: "2.27", currency: RUB}
carriers:
  mts:
    format: kannel
    rates:
      - {prefix: "+7", price_per_part: "0.80", currency: RUB}
"""
CHEAPER = TARIFFS.replace("2.27", "1.50").replace("0.80", "0.60")


def _run(tmp_path: Path, db_url: str, *args: str, config: str = TARIFFS):  # type: ignore[no-untyped-def]
    path = tmp_path / "config.yaml"
    path.write_text(config)
    return CliRunner().invoke(cli, ["--config", str(path), "--database-url", db_url, *args])


def _prices(db: Database) -> dict[str, tuple[Decimal | None, Decimal | None]]:
    st = message_state
    with db.read() as conn:
        rows = conn.execute(select(st.c.message_id, st.c.payment_sum, st.c.carrier_cost_expected))
        return {r.message_id: (r.payment_sum, r.carrier_cost_expected) for r in rows}


def _recorded(db: Database) -> list[dict]:  # type: ignore[type-arg]
    with db.read() as conn:
        rows = conn.execute(
            select(events.c.payload).where(events.c.type == "prices.recorded")
        ).all()
    return [r.payload if isinstance(r.payload, dict) else json.loads(r.payload) for r in rows]


def _history(db: Database, db_url: str, tmp_path: Path) -> None:
    """m1 accepted before any table was recorded, the tariff edited, m2 accepted after."""
    append(db, [accepted("m1"), submitted("m1", "c1")])
    assert _run(tmp_path, db_url, "project").exit_code == 0  # records v1, after m1
    assert _run(tmp_path, db_url, "project", config=CHEAPER).exit_code == 0  # records v2
    append(db, [accepted("m2", 5), submitted("m2", "c2", 6)])
    assert _run(tmp_path, db_url, "project", config=CHEAPER).exit_code == 0


def test_editing_a_tariff_then_rebuild_changes_no_historical_price(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _history(db, db_url, tmp_path)
    # The first table prices the message accepted before it; the new one the later message.
    assert _prices(db) == {
        "m1": (Decimal("2.27"), Decimal("0.80")),
        "m2": (Decimal("1.50"), Decimal("0.60")),
    }
    scopes = [(p["scope"], p["version"]) for p in _recorded(db)]
    assert sorted(scopes) == [
        ("billing", 1),
        ("billing", 2),
        ("carrier:mts", 1),
        ("carrier:mts", 2),
    ]
    # The file edited again: a rebuild folds the tables the log recorded, not the file.
    edited = TARIFFS.replace("2.27", "9.99")
    result = _run(tmp_path, db_url, "replay", "--rebuild", config=edited)
    assert result.exit_code == 0, result.output
    assert _prices(db) == {
        "m1": (Decimal("2.27"), Decimal("0.80")),
        "m2": (Decimal("1.50"), Decimal("0.60")),
    }
    result = _run(tmp_path, db_url, "replay", "--verify", config=edited)
    assert result.exit_code == 0, result.output
    # explain names the version that priced each message.
    assert "tariff: billing v1" in _run(tmp_path, db_url, "explain", "m1").output
    assert "tariff: billing v2" in _run(tmp_path, db_url, "explain", "m2").output


def test_a_message_accepted_after_the_change_gets_the_new_price(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _history(db, db_url, tmp_path)
    append(db, [accepted("m3", 9), submitted("m3", "c3", 10)])
    assert _run(tmp_path, db_url, "project", config=CHEAPER).exit_code == 0
    assert _prices(db)["m3"] == (Decimal("1.50"), Decimal("0.60"))


def test_an_unchanged_table_is_recorded_once_and_concurrent_recorders_converge(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(TARIFFS)
    settings = load_settings(str(path), {"database.url": db_url})
    start = threading.Barrier(4)
    appended: list[int] = []

    def recorder() -> None:
        start.wait()
        appended.extend(p for p, _e in record_prices(db, settings))

    threads = [threading.Thread(target=recorder) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(appended) == 2  # billing and carrier:mts, once each
    assert record_prices(db, settings) == []  # unchanged: nothing more
    assert sorted(p["scope"] for p in _recorded(db)) == ["billing", "carrier:mts"]


def test_reprice_changes_exactly_the_range_and_is_in_the_log(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    _history(db, db_url, tmp_path)
    # m0 accepted a day earlier, outside the range.
    append(db, [accepted("m0", -24 * 60), submitted("m0", "c0", -24 * 60 + 1)])
    assert _run(tmp_path, db_url, "project", config=CHEAPER).exit_code == 0
    before = _prices(db)
    assert before["m0"][0] == Decimal("1.50")  # accepted (in the log) after v2
    args = ["prices", "reprice", "--from", "2026-01-15", "--to", "2026-01-15", "--version", "1"]
    dry = _run(tmp_path, db_url, *args, "--note", "contract price", "--dry-run", config=CHEAPER)
    assert dry.exit_code == 0, dry.output
    assert "2 messages, 1 changed" in dry.output
    assert "RUB: 3.77 -> 4.54 (+0.77)" in dry.output
    assert _prices(db) == before  # a dry run changes nothing
    result = _run(tmp_path, db_url, *args, "--note", "contract price", config=CHEAPER)
    assert result.exit_code == 0, result.output
    assert "RUB: 3.77 -> 4.54 (+0.77)" in result.output
    after = _prices(db)
    assert after["m2"][0] == Decimal("2.27")  # in the range: priced by v1
    assert after["m1"] == before["m1"] and after["m0"] == before["m0"]
    with db.read() as conn:
        repriced = conn.execute(
            select(events.c.payload).where(events.c.type == "prices.repriced")
        ).all()
    assert len(repriced) == 1
    listing = _run(tmp_path, db_url, "prices", "list", config=CHEAPER)
    assert "repriced" in listing.output and "contract price" in listing.output
    assert "repriced at position" in _run(tmp_path, db_url, "explain", "m2").output
    # The repricing is history too: a rebuild reproduces it, verify holds.
    assert _run(tmp_path, db_url, "replay", "--rebuild", config=TARIFFS).exit_code == 0
    assert _prices(db) == after
    result = _run(tmp_path, db_url, "replay", "--verify", config=TARIFFS)
    assert result.exit_code == 0, result.output
