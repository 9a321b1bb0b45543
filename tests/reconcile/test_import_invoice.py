"""``smsrecon reconcile import-invoice`` and ``close-invoice`` through the real command line."""

from __future__ import annotations

import gzip
import hashlib
import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner, Result

from pipeline.cli.main import cli
from pipeline.db.engine import Database
from tests.ingest.server_fixtures import quarantine_rows, stored_events

CONFIG = """
carriers:
  mts:
    format: kannel
  beeline:
    format: generic
    invoice:
      columns: {carrier_message_id: "Msg ID", billed_at: "Date", parts: "Segments",
                cost: "Amount", invoice_id: "Invoice"}
      delimiter: ";"
      decimal_separator: ","
      date_format: "%d.%m.%Y %H:%M:%S"
      timezone: Europe/Moscow
      currency: RUB
"""

HEADER = "invoice_id,carrier_message_id,message_id,billed_at,destination,parts,cost,currency\n"
CSV = (
    HEADER
    + "INV-1,c1,,2026-01-15T10:00:00Z,+79161234567,1,0.35,RUB\n"
    + "INV-1,c2,m2,2026-01-16T23:59:59Z,+79161234568,2,0.70,RUB\n"
    + "INV-1,,m3,2026-01-17T00:00:00+03:00,,,-0.35,RUB\n"
)
JSONL = (
    '{"invoice_id": "INV-1", "carrier_message_id": "c1", "billed_at": "2026-01-15T10:00:00Z",'
    ' "destination": "+79161234567", "parts": 1, "cost": "0.35", "currency": "RUB"}\n'
    '{"invoice_id": "INV-1", "carrier_message_id": "c2", "message_id": "m2",'
    ' "billed_at": "2026-01-16T23:59:59Z", "destination": "+79161234568", "parts": 2,'
    ' "cost": 0.70, "currency": "RUB"}\n'
    '{"invoice_id": "INV-1", "message_id": "m3", "billed_at": "2026-01-17T00:00:00+03:00",'
    ' "cost": "-0.35", "currency": "RUB"}\n'
)


def run(db_url: str, tmp_path: Path, *args: str, config: str = CONFIG) -> Result:
    config_file = tmp_path / "config.yaml"
    config_file.write_text(config)
    return CliRunner().invoke(
        cli, ["--config", str(config_file), "--database-url", db_url, *args], catch_exceptions=False
    )


def import_invoice(
    db_url: str, tmp_path: Path, file: Path, *options: str, config: str = CONFIG
) -> Result:
    """``smsrecon reconcile import-invoice FILE --carrier mts [options]``."""
    command = ("reconcile", "import-invoice", str(file), "--carrier", "mts", *options)
    return run(db_url, tmp_path, *command, config=config)


def lines(db: Database) -> list[tuple]:
    """The invoiced events as comparable tuples (not the source: the file names differ)."""
    return [
        (
            r.type,
            r.message_id,
            r.carrier,
            r.carrier_message_id,
            r.occurred_at,
            r.dedup_key,
            json.dumps(r.payload, sort_keys=True),
        )
        for r in stored_events(db, "carrier.invoiced")
    ]


def header(db: Database, version: int = 1) -> dict:
    rows = [r.payload for r in stored_events(db, "carrier.invoice")]
    return next(p for p in rows if p["version"] == version)


def test_csv_lines_become_invoiced_events_and_one_header(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text(CSV)
    result = import_invoice(db_url, tmp_path, file)
    assert result.exit_code == 0, result.output
    assert (
        "invoice INV-1 version 1: read 3, appended 3, duplicates 0, quarantined 0" in result.output
    )
    rows = stored_events(db, "carrier.invoiced")
    assert [(r.message_id, r.carrier, r.carrier_message_id) for r in rows] == [
        (None, "mts", "c1"),
        ("m2", "mts", "c2"),
        ("m3", "mts", None),
    ]
    assert [r.dedup_key for r in rows] == [f"invoice:INV-1:v1:line:{n}" for n in (1, 2, 3)]
    first, second, credit = (r.payload for r in rows)
    assert first == {
        "carrier": "mts",
        "carrier_message_id": "c1",
        "cost": "0.35",
        "currency": "RUB",
        "destination": "+79161234567",
        "invoice_id": "INV-1",
        "line": 1,
        "parts": 1,
        "version": 1,
    }
    assert (second["parts"], second["cost"], second["message_id"]) == (2, "0.70", "m2")
    assert (credit["parts"], credit["cost"]) == (1, "-0.35")
    # 00:00 in +03:00 is 21:00 UTC the day before.
    assert rows[2].occurred_at.isoformat() == "2026-01-16T21:00:00+00:00"
    assert header(db) == {
        "invoice_id": "INV-1",
        "carrier": "mts",
        "version": 1,
        "period_from": "2026-01-15T00:00:00Z",
        "period_to": "2026-01-17T00:00:00Z",
        "currency": "RUB",
        "total": None,
        "lines": 3,
        "sha256": hashlib.sha256(CSV.encode()).hexdigest(),
        "file": "inv.csv",
    }


def test_csv_and_gzipped_json_lines_give_the_same_events(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    csv_file = tmp_path / "inv.csv"
    csv_file.write_text(CSV)
    assert import_invoice(db_url, tmp_path, csv_file).exit_code == 0
    from_csv = lines(db)
    jsonl = tmp_path / "inv.jsonl.gz"
    jsonl.write_bytes(gzip.compress(JSONL.encode()))
    result = import_invoice(
        db_url,
        tmp_path,
        jsonl,
        "--supersede",
    )
    assert result.exit_code == 0, result.output
    assert "version 2: read 3, appended 3" in result.output
    from_json = [row for row in lines(db) if ":v2:" in row[5]]

    def same(row: tuple) -> tuple:
        payload = json.loads(row[6])
        payload.pop("version")
        return (*row[:5], row[5].replace(":v2:", ":v1:"), payload)

    assert [same(r) for r in from_json] == [
        (*r[:5], r[5], {k: v for k, v in json.loads(r[6]).items() if k != "version"})
        for r in from_csv
    ]


def test_a_comma_decimal_file_with_a_column_map(db: Database, db_url: str, tmp_path: Path) -> None:
    file = tmp_path / "beeline.csv"
    file.write_text(
        "Invoice;Msg ID;Date;Segments;Amount\n"
        "B-7;x1;15.01.2026 13:00:00;3;1,05\n"
        "B-7;x2;31.01.2026 23:30:00;1;0,35\n"
    )
    result = run(
        db_url,
        tmp_path,
        "reconcile",
        "import-invoice",
        str(file),
        "--carrier",
        "beeline",
        "--total",
        "1.40",
    )
    assert result.exit_code == 0, result.output
    rows = stored_events(db, "carrier.invoiced")
    assert [(r.carrier_message_id, r.payload["cost"], r.payload["parts"]) for r in rows] == [
        ("x1", "1.05", 3),
        ("x2", "0.35", 1),
    ]
    assert Decimal(rows[0].payload["cost"]) == Decimal("1.05")
    # Moscow is UTC+3: 13:00 there is 10:00 UTC, and 23:30 on the 31st is 20:30 UTC.
    assert [r.occurred_at.isoformat() for r in rows] == [
        "2026-01-15T10:00:00+00:00",
        "2026-01-31T20:30:00+00:00",
    ]
    head = header(db)
    assert (head["currency"], head["total"], head["period_from"], head["period_to"]) == (
        "RUB",
        "1.40",
        "2026-01-15T00:00:00Z",
        "2026-02-01T00:00:00Z",
    )


def test_period_and_invoice_id_from_the_command_line(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text(CSV.replace("INV-1,", ","))
    result = import_invoice(
        db_url,
        tmp_path,
        file,
        "--invoice-id",
        "2026-01",
        "--period",
        "2026-01-01..2026-02-01",
    )
    assert result.exit_code == 0, result.output
    head = header(db)
    assert (head["invoice_id"], head["period_from"], head["period_to"]) == (
        "2026-01",
        "2026-01-01T00:00:00Z",
        "2026-02-01T00:00:00Z",
    )


def test_the_same_file_again_is_a_no_op_that_says_so(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text(CSV)
    assert import_invoice(db_url, tmp_path, file).exit_code == 0
    before = len(stored_events(db))
    again = import_invoice(db_url, tmp_path, file)
    assert again.exit_code == 0, again.output
    assert "invoice INV-1: this file is already imported (version 1); nothing appended" in (
        again.output
    )
    assert len(stored_events(db)) == before


def test_a_different_file_under_the_same_invoice_is_refused_without_supersede(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text(CSV)
    assert import_invoice(db_url, tmp_path, file).exit_code == 0
    before = len(stored_events(db))
    changed = tmp_path / "inv-corrected.csv"
    changed.write_text(CSV.replace("0.70", "0.69"))
    refused = import_invoice(db_url, tmp_path, changed)
    assert refused.exit_code == 2
    assert refused.output.strip().splitlines() == [
        "smsrecon: invoice INV-1 is already imported (version 1) from another file: "
        "--supersede records this one as its new version"
    ]
    assert len(stored_events(db)) == before


def test_supersede_records_version_two_and_the_log_keeps_both(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text(CSV)
    assert import_invoice(db_url, tmp_path, file).exit_code == 0
    changed = tmp_path / "inv-corrected.csv"
    changed.write_text(CSV.replace("0.70", "0.69"))
    result = import_invoice(
        db_url,
        tmp_path,
        changed,
        "--supersede",
    )
    assert result.exit_code == 0, result.output
    assert "invoice INV-1 version 2: read 3, appended 3" in result.output
    heads = [r.payload for r in stored_events(db, "carrier.invoice")]
    assert [(h["version"], h["file"]) for h in heads] == [(1, "inv.csv"), (2, "inv-corrected.csv")]
    costs = [
        (r.payload["version"], r.payload["cost"]) for r in stored_events(db, "carrier.invoiced")
    ]
    assert ("1", "0.70") not in costs
    assert (1, "0.70") in costs and (2, "0.69") in costs and len(costs) == 6


def test_wrong_columns_refuse_the_file_in_one_line(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text("invoice,id,when,amount\nINV-1,c1,2026-01-15T10:00:00Z,0.35\n")
    result = import_invoice(db_url, tmp_path, file)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "smsrecon: inv.csv: wrong columns: missing billed_at, cost, invoice_id, currency, "
        "message_id or carrier_message_id (header has invoice, id, when, amount)"
    ]
    assert stored_events(db) == [] and quarantine_rows(db) == []


def test_an_empty_file_is_refused_in_one_line(db: Database, db_url: str, tmp_path: Path) -> None:
    cases = (
        ("empty.csv", ""),
        ("blank.jsonl", "\n"),
        ("empty.jsonl", ""),
        ("header-only.csv", HEADER),
    )
    for name, text in cases:
        file = tmp_path / name
        file.write_text(text)
        result = import_invoice(db_url, tmp_path, file)
        assert result.exit_code == 2, (name, result.output)
        assert len(result.output.strip().splitlines()) == 1
        assert "empty file" in result.output
    assert stored_events(db) == []


def test_bad_lines_are_quarantined_with_their_row_and_the_good_ones_imported(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text(
        HEADER
        + "INV-1,c1,,2026-01-15T10:00:00Z,+79161234567,1,0.35,RUB\n"  # row 2: good
        + "INV-1,c2,,2026-01-15T10:00:00Z,,1,0.3.5,RUB\n"  # row 3: bad decimal
        + "INV-1,c3,,2026-01-15T10:00:00Z,,1,0\x0035,RUB\n"  # row 4: a NUL
        + "INV-1,c4,,0999-01-15T10:00:00Z,,1,0.35,RUB\n"  # row 5: year 999
        + "INV-1,c5,,2026-01-15T10:00:00Z,,1,1E+400,RUB\n"  # row 6: huge
        + "INV-1,c6,,2026-01-15T10:00:00Z,,1,999999,RUB\n"  # row 7: beyond max_amount
        + "INV-1,c7,,2026-01-15T10:00:00Z,,1\n"  # row 8: too few fields
        + "INV-1,c8,,2026-01-15T11:00:00Z,,1,0.40,RUB\n"  # row 9: good
    )
    result = import_invoice(db_url, tmp_path, file)
    assert result.exit_code == 3, result.output
    assert "read 8, appended 2, duplicates 0, quarantined 6" in result.output
    assert [r.carrier_message_id for r in stored_events(db, "carrier.invoiced")] == ["c1", "c8"]
    entries = quarantine_rows(db)
    assert [e.error for e in entries] == [
        f"invalid invoice line (inv.csv, row {n})" for n in (3, 4, 5, 6, 7, 8)
    ]
    assert [(d["row"], d["field"]) for e in entries for d in e.detail] == [
        (3, "cost"),
        (4, "cost"),
        (5, "billed_at"),
        (6, "cost"),
        (7, "cost"),
        (8, "row"),
    ]
    assert header(db)["lines"] == 2


def test_a_bad_json_line_is_quarantined_with_its_line_number(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.jsonl"
    bad = '{"invoice_id": "INV-1", "carrier_message_id": "c9\\u0000", "cost": "1"}\n'
    file.write_text(JSONL.splitlines(keepends=True)[0] + "not json\n" + bad)
    result = import_invoice(db_url, tmp_path, file)
    assert result.exit_code == 3, result.output
    assert "read 3, appended 1, duplicates 0, quarantined 2" in result.output
    assert [e.error for e in quarantine_rows(db)] == [
        "invalid invoice line (inv.jsonl, row 2)",
        "invalid invoice line (inv.jsonl, row 3)",
    ]


def test_close_invoice_appends_once_and_refuses_an_unknown_id(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    unknown = run(db_url, tmp_path, "reconcile", "close-invoice", "INV-1")
    assert unknown.exit_code == 2
    assert unknown.output.strip() == "smsrecon: no invoice INV-1 was imported"
    file = tmp_path / "inv.csv"
    file.write_text(CSV)
    assert import_invoice(db_url, tmp_path, file).exit_code == 0
    closed = run(db_url, tmp_path, "reconcile", "close-invoice", "INV-1")
    assert closed.exit_code == 0 and "invoice INV-1: closed" in closed.output
    again = run(db_url, tmp_path, "reconcile", "close-invoice", "INV-1")
    assert again.exit_code == 0
    assert "invoice INV-1: already closed; nothing appended" in again.output
    rows = stored_events(db, "carrier.invoice_closed")
    assert [(r.payload, r.carrier) for r in rows] == [
        ({"invoice_id": "INV-1", "carrier": "mts", "version": 1}, "mts")
    ]


def test_replay_verify_holds_after_an_import_and_a_close(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.csv"
    file.write_text(CSV)
    assert import_invoice(db_url, tmp_path, file).exit_code == 0
    assert run(db_url, tmp_path, "reconcile", "close-invoice", "INV-1").exit_code == 0
    projected = run(db_url, tmp_path, "project")
    assert projected.exit_code == 0, projected.output
    verified = run(db_url, tmp_path, "replay", "--verify")
    assert verified.exit_code == 0 and "replay matches" in verified.output


def test_a_file_larger_than_a_chunk_is_appended_whole_and_counted(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "big.csv"
    rows = "".join(f"INV-9,c{n},,2026-01-15T10:00:00Z,,1,0.35,RUB\n" for n in range(2500))
    file.write_text(HEADER + rows)
    result = import_invoice(db_url, tmp_path, file)
    assert result.exit_code == 0, result.output
    assert "read 2500, appended 2500, duplicates 0, quarantined 0" in result.output
    assert header(db)["lines"] == 2500
    assert len(stored_events(db, "carrier.invoiced")) == 2500


def test_a_file_that_is_not_utf8_is_refused_in_one_line(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    file = tmp_path / "inv.jsonl"
    file.write_bytes(b'{"invoice_id": "INV-1", "message_id": "\xff"}\n')
    result = import_invoice(db_url, tmp_path, file)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "smsrecon: inv.jsonl: not UTF-8 text (invalid start byte)"
    ]
    assert stored_events(db) == []


def test_a_corrected_version_resolves_the_quarantined_lines_of_the_old_one(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    """A bad line cannot be replayed alone (it belongs to its file): replay says how to fix
    it, and importing the corrected file as a new version resolves it."""
    bad = tmp_path / "inv.csv"
    bad.write_text(
        HEADER
        + "INV-1,c1,,2026-01-15T10:00:00Z,,1,0.35,RUB\n"
        + "INV-1,c2,,2026-01-15T10:00:00Z,,1,0.3.5,RUB\n"
    )
    assert import_invoice(db_url, tmp_path, bad).exit_code == 3
    (entry,) = quarantine_rows(db)
    replayed = run(db_url, tmp_path, "quarantine", "replay", str(entry.id))
    assert replayed.exit_code == 3
    assert "import the corrected file with `smsrecon reconcile import-invoice --supersede`" in (
        replayed.output
    )
    fixed = tmp_path / "inv-fixed.csv"
    fixed.write_text(
        HEADER
        + "INV-1,c1,,2026-01-15T10:00:00Z,,1,0.35,RUB\n"
        + "INV-1,c2,,2026-01-15T10:00:00Z,,1,0.35,RUB\n"
    )
    result = import_invoice(db_url, tmp_path, fixed, "--supersede")
    assert result.exit_code == 0, result.output
    assert "1 quarantined line(s) of older versions resolved" in result.output
    (after,) = quarantine_rows(db)
    assert (after.status, after.note) == ("resolved", "superseded by invoice INV-1 version 2")
