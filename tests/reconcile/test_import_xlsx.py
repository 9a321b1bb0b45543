"""``import-invoice`` of .xlsx workbooks through the command line, on both engines: the same
invoice as CSV and as a workbook gives the same events; bad workbooks are refused whole."""

from __future__ import annotations

import hashlib
from datetime import datetime
from pathlib import Path
from typing import Any

from pipeline.db.engine import Database
from tests.ingest.server_fixtures import quarantine_rows, stored_events
from tests.reconcile.test_import_invoice import header, import_invoice, run
from tests.reconcile.xlsx_files import declare_size, replace_in_sheet, write_xlsx

COLUMNS = ["invoice_id", "carrier_message_id", "message_id", "billed_at", "parts", "cost"]
CSV = (
    "invoice_id,carrier_message_id,message_id,billed_at,parts,cost,currency\n"
    "INV-1,c1,,2026-01-15T10:00:00,1,0.35,RUB\n"
    "INV-1,c2,m2,2026-01-16T23:59:59,2,0.7,RUB\n"
    "INV-1,,m3,2026-01-17T00:00:00,,-0.35,RUB\n"
    "INV-1,c4,,2026-01-17T08:00:00,1,0.035,RUB\n"
)


def same_events(db: Database) -> tuple[list[tuple], list[tuple]]:
    """Version 1's and version 2's lines, comparable: the version and source left out."""

    def comparable(version: int) -> list[tuple]:
        found = []
        for r in stored_events(db, "carrier.invoiced"):
            payload = dict(r.payload)
            if payload.pop("version") != version:
                continue
            key = r.dedup_key.replace(f":v{version}:", ":v:")
            found.append((r.message_id, r.carrier_message_id, r.occurred_at, key, payload))
        return found

    return comparable(1), comparable(2)


def same_header(db: Database, version: int) -> dict[str, Any]:
    head = dict(header(db, version))
    for name in ("version", "sha256", "file"):
        head.pop(name)
    return head


def test_the_same_invoice_as_csv_and_xlsx_gives_the_same_events(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    csv_file = tmp_path / "inv.csv"
    csv_file.write_text(CSV)
    assert import_invoice(db_url, tmp_path, csv_file, "--total", "1.735").exit_code == 0
    book = write_xlsx(
        tmp_path / "inv.xlsx",
        [
            [*COLUMNS, "currency"],
            ["INV-1", "c1", None, datetime(2026, 1, 15, 10), 1, 0.35, "RUB"],
            ["INV-1", "c2", "m2", datetime(2026, 1, 16, 23, 59, 59), 2, 0.7, "RUB"],
            ["INV-1", None, "m3", "2026-01-17T00:00:00", None, "-0.35", "RUB"],  # text cells
            ["INV-1", "c4", None, datetime(2026, 1, 17, 8), 1, 0.035, "RUB"],
        ],
    )
    # Another writer stores the double of 0.035 with all 17 digits.
    replace_in_sheet(book, "<v>0.035</v>", "<v>3.5000000000000003E-2</v>")
    result = import_invoice(db_url, tmp_path, book, "--total", "1.735", "--supersede")
    assert result.exit_code == 0, result.output
    assert "invoice INV-1 version 2: read 4, appended 4, duplicates 0, quarantined 0" in (
        result.output
    )
    from_csv, from_xlsx = same_events(db)
    assert len(from_csv) == 4
    assert from_xlsx == from_csv
    assert [p["cost"] for *_, p in from_xlsx] == ["0.35", "0.7", "-0.35", "0.035"]
    assert same_header(db, 2) == same_header(db, 1)
    assert header(db, 2)["sha256"] == hashlib.sha256(book.read_bytes()).hexdigest()
    assert header(db, 2)["file"] == "inv.xlsx"


def test_a_comma_decimal_workbook_with_text_and_numeric_amounts(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    """Text cells follow the layout (``0,035``, a date in date_format); numeric cells and
    date cells are values already, whatever the separator; both in Moscow time."""
    csv_file = tmp_path / "beeline.csv"
    csv_file.write_text(
        "Invoice;Msg ID;Date;Segments;Amount\n"
        "B-7;x1;15.01.2026 13:00:00;3;1,05\n"
        "B-7;x2;31.01.2026 23:30:00;1;0,035\n"
        "B-7;x3;31.01.2026 23:40:00;1;0,35\n"
    )
    command = ("reconcile", "import-invoice", "--carrier", "beeline")
    first = run(db_url, tmp_path, *command, str(csv_file))
    assert first.exit_code == 0, first.output
    book = write_xlsx(
        tmp_path / "beeline.xlsx",
        [
            ["Invoice", "Msg ID", "Date", "Segments", "Amount"],
            ["B-7", "x1", datetime(2026, 1, 15, 13), 3, 1.05],
            ["B-7", "x2", "31.01.2026 23:30:00", "1", "0,035"],
            ["B-7", "x3", datetime(2026, 1, 31, 23, 40), 1, 0.35],
        ],
        date_format="dd.mm.yyyy hh:mm:ss",
    )
    second = run(db_url, tmp_path, *command, str(book), "--supersede")
    assert second.exit_code == 0, second.output
    from_csv, from_xlsx = same_events(db)
    assert from_xlsx == from_csv
    assert [(p["cost"], at.isoformat()) for _m, _c, at, _k, p in from_xlsx] == [
        ("1.05", "2026-01-15T10:00:00+00:00"),
        ("0.035", "2026-01-31T20:30:00+00:00"),
        ("0.35", "2026-01-31T20:40:00+00:00"),
    ]
    assert same_header(db, 2) == same_header(db, 1)


def test_xlsx_by_format_option_whatever_the_name(db: Database, db_url: str, tmp_path: Path) -> None:
    book = write_xlsx(
        tmp_path / "export.bin",
        [[*COLUMNS, "currency"], ["INV-2", "c1", None, "2026-01-15T10:00:00Z", 1, 0.35, "RUB"]],
    )
    refused = import_invoice(db_url, tmp_path, book)
    assert refused.exit_code == 2
    assert "cannot tell the format from the name (use --format)" in refused.output
    result = import_invoice(db_url, tmp_path, book, "--format", "xlsx")
    assert result.exit_code == 0, result.output
    assert [r.payload["cost"] for r in stored_events(db, "carrier.invoiced")] == ["0.35"]


def test_bad_cells_are_quarantined_with_the_sheets_row_number(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    book = write_xlsx(
        tmp_path / "inv.xlsx",
        [
            [*COLUMNS, "currency"],
            ["INV-1", "c1", None, "2026-01-15T10:00:00Z", 1, 0.35, "RUB"],  # row 2
            ["INV-1", "c2", None, "2026-01-15T10:00:00Z", 1, "0.3.5", "RUB"],  # row 3
            [],  # row 4: empty, skipped, still counted by the sheet
            ["INV-1", "c5", None, "2026-01-15T10:00:00Z", 1, "abc", "RUB"],  # row 5
            ["INV-1", "c6", None, "2026-01-15T10:00:00Z", 1, 0.35, "RUB", "extra"],  # row 6
            ["INV-1", "c7", None, datetime(1899, 12, 31), 1, 0.35, "RUB"],  # row 7
            ["INV-1", "c8", None, "2026-01-15T11:00:00Z", 1, 0.4, "RUB"],  # row 8
        ],
    )
    result = import_invoice(db_url, tmp_path, book)
    assert result.exit_code == 3, result.output
    assert "read 6, appended 2, duplicates 0, quarantined 4" in result.output
    assert [r.carrier_message_id for r in stored_events(db, "carrier.invoiced")] == ["c1", "c8"]
    entries = quarantine_rows(db)
    assert [e.error for e in entries] == [
        f"invalid invoice line (inv.xlsx, row {n})" for n in (3, 5, 6, 7)
    ]
    assert [(d["row"], d["field"]) for e in entries for d in e.detail] == [
        (3, "cost"),
        (5, "cost"),
        (6, "row"),
        (7, "billed_at"),
    ]


def test_wrong_columns_in_a_workbook_refuse_it_in_one_line(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    book = write_xlsx(tmp_path / "inv.xlsx", [["invoice", "id", "amount"], ["I", "c1", 0.35]])
    result = import_invoice(db_url, tmp_path, book)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "smsrecon: inv.xlsx: wrong columns: missing billed_at, cost, invoice_id, currency, "
        "message_id or carrier_message_id (header has invoice, id, amount)"
    ]
    assert stored_events(db) == [] and quarantine_rows(db) == []


def test_empty_and_broken_workbooks_are_refused_in_one_line(
    db: Database, db_url: str, tmp_path: Path
) -> None:
    empty = write_xlsx(tmp_path / "empty.xlsx", [])
    header_only = write_xlsx(tmp_path / "header-only.xlsx", [[*COLUMNS, "currency"]])
    zero = tmp_path / "zero.xlsx"
    zero.write_bytes(b"")
    text = tmp_path / "text.xlsx"
    text.write_text(CSV)
    bomb = write_xlsx(tmp_path / "bomb.xlsx", [[*COLUMNS, "currency"]])
    declare_size(bomb, "xl/worksheets/sheet1.xml", 0xFFFFFFF0)
    expected = {
        "empty.xlsx": "smsrecon: empty.xlsx: empty file: no header and no lines",
        "header-only.xlsx": "smsrecon: header-only.xlsx: empty file: no invoice lines",
        "zero.xlsx": "smsrecon: zero.xlsx: not an .xlsx workbook (not a zip file)",
        "text.xlsx": "smsrecon: text.xlsx: not an .xlsx workbook (not a zip file)",
        "bomb.xlsx": (
            "smsrecon: bomb.xlsx: the first sheet declares 4294967280 bytes of XML, more "
            "than 1073741824 (split the invoice)"
        ),
    }
    for file in (empty, header_only, zero, text, bomb):
        result = import_invoice(db_url, tmp_path, file)
        assert result.exit_code == 2, (file.name, result.output)
        assert result.output.strip().splitlines() == [expected[file.name]]
    assert stored_events(db) == [] and quarantine_rows(db) == []
