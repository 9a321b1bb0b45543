"""Reading a workbook's first sheet: exact numbers, dates, strings and the bounds."""

from __future__ import annotations

import tracemalloc
import zipfile
from collections import deque
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from pipeline.reconcile import xlsx_cells, xlsx_reader
from pipeline.reconcile.xlsx_reader import NotReadable, read_rows
from pipeline.reconcile.xlsx_strings import SharedStrings
from tests.reconcile.xlsx_files import declare_size, hand_xlsx, write_xlsx


@pytest.mark.parametrize(
    ("stored", "amount"),
    [
        ("0.035", "0.035"),
        ("3.5000000000000003E-2", "0.035"),  # 17 digits of the double typed as 0.035
        ("0.35", "0.35"),
        ("1.05", "1.05"),
        ("1.0500000000000000444", "1.05"),
        ("0.30000000000000004", "0.3"),  # =0.1+0.2: Excel shows its 15 digits
        ("-2.27", "-2.27"),
        ("123456789012345", "123456789012345"),  # 15 digits: kept as written
        ("1E-3", "0.001"),
        ("12", "12"),
    ],
)
def test_a_numeric_cell_is_the_decimal_excel_shows(stored: str, amount: str) -> None:
    value = xlsx_cells.number(stored)
    assert isinstance(value, Decimal)
    assert value == Decimal(amount)


def test_a_cell_that_is_no_number_is_none() -> None:
    assert [xlsx_cells.number(t) for t in ("abc", "1e99999", "", "0x10", "1" * 41)] == [None] * 5


def test_date_serials_count_days_from_1899_12_30_and_round_to_the_second() -> None:
    assert xlsx_cells.date_serial("46037") == datetime(2026, 1, 15)
    # 13:00 is 13/24 of a day, stored as the double's 17 digits
    assert xlsx_cells.date_serial("46037.541666666664") == datetime(2026, 1, 15, 13, 0, 0)
    assert xlsx_cells.date_serial("46037.999999999") == datetime(2026, 1, 16)
    assert xlsx_cells.date_serial("0.5", date1904=True) == datetime(1904, 1, 1, 12)
    assert xlsx_cells.date_serial("-1") is None
    assert xlsx_cells.date_serial("9999999") is None


def test_openpyxl_cells_read_back_exactly(tmp_path: Path) -> None:
    moment = datetime(2026, 1, 15, 13, 0, 5)
    path = write_xlsx(
        tmp_path / "a.xlsx",
        [["id", "cost", "when", "note"], ["x1", 0.035, moment, "0,035"], ["x2", 0.1 + 0.2, 3]],
    )
    rows = list(read_rows(path))
    assert [(r.number, r.cells, r.problem) for r in rows] == [
        (1, {0: "id", 1: "cost", 2: "when", 3: "note"}, None),
        (2, {0: "x1", 1: Decimal("0.035"), 2: moment, 3: "0,035"}, None),
        (3, {0: "x2", 1: Decimal("0.3"), 2: Decimal(3)}, None),
    ]


def test_shared_rich_and_inline_strings_and_styles(tmp_path: Path) -> None:
    path = hand_xlsx(
        tmp_path / "b.xlsx",
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="C1" t="s"><v>1</v></c></row>'
        '<row r="4"><c r="A4" t="inlineStr"><is><t>in</t><r><t>line</t></r></is></c>'
        '<c r="B4" s="1"><v>46037.541666666664</v></c><c r="C4" s="2"><v>46037</v></c>'
        '<c r="D4" t="b"><v>1</v></c><c r="E4" t="e"><v>#N/A</v></c>'
        '<c r="H4" s="3"><v>46037</v></c>'
        '<c r="F4" t="str"><f>A1</f><v>id</v></c><c r="G4"><v>3.5000000000000003E-2</v></c></row>',
        shared=["<t>id</t>", "<r><t>co</t></r><r><t>st</t></r><rPh><t>KOSUTO</t></rPh>"],
        date_styles=1,
    )
    rows = list(read_rows(path))
    assert rows[0].cells == {0: "id", 2: "cost"}
    assert (rows[1].number, rows[1].cells) == (
        4,
        {
            0: "inline",
            1: datetime(2026, 1, 15, 13),
            2: datetime(2026, 1, 15),
            3: "TRUE",
            4: "#N/A",
            5: "id",
            6: Decimal("0.035"),
            7: datetime(2026, 1, 15),  # a built-in East Asian date format (id 31)
        },
    )


def test_dates_of_a_1904_workbook(tmp_path: Path) -> None:
    path = hand_xlsx(
        tmp_path / "c.xlsx",
        '<row r="1"><c r="A1" s="1"><v>44575.5</v></c></row>',
        date_styles=1,
        date1904=True,
    )
    assert next(read_rows(path)).cells == {0: datetime(2026, 1, 15, 12)}


def test_a_file_that_is_no_workbook_is_refused(tmp_path: Path) -> None:
    text = tmp_path / "text.xlsx"
    text.write_text("invoice_id,cost\nI,1\n")
    with pytest.raises(NotReadable, match=r"not an \.xlsx workbook \(not a zip file\)"):
        list(read_rows(text))
    other = tmp_path / "other.xlsx"
    with zipfile.ZipFile(other, "w") as book:
        book.writestr("readme.txt", "hello")
    with pytest.raises(NotReadable, match=r"no xl/workbook\.xml"):
        list(read_rows(other))


def test_a_doctype_is_refused(tmp_path: Path) -> None:
    bomb = (
        b'<?xml version="1.0"?><!DOCTYPE w [<!ENTITY a "aaaaaaaaaa">'
        b'<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<worksheet><sheetData><row r="1"><c t="inlineStr"><is><t>&b;</t></is></c></row>'
        b"</sheetData></worksheet>"
    )
    path = hand_xlsx(tmp_path / "d.xlsx", "", sheet_bytes=bomb)
    with pytest.raises(NotReadable, match="DOCTYPE"):
        list(read_rows(path))


def test_a_sheet_declaring_more_than_the_bound_is_refused_before_reading(tmp_path: Path) -> None:
    path = hand_xlsx(tmp_path / "e.xlsx", '<row r="1"><c t="inlineStr"><is><t>a</t></is></c></row>')
    declare_size(path, "xl/worksheets/sheet1.xml", 0xFFFFFFF0)
    with pytest.raises(NotReadable, match=r"declares 4294967280 bytes of XML, more than"):
        list(read_rows(path))


def test_a_huge_cell_costs_its_row_and_is_never_held_whole(tmp_path: Path) -> None:
    """A 40 MB cell compresses to a few dozen kilobytes: a bomb within the declared bound.
    It is streamed: its row is an error, the next row is read, and memory stays small."""
    huge = b"A" * (40 << 20)
    sheet = (
        b'<worksheet><sheetData><row r="1"><c r="A1" t="inlineStr"><is><t>'
        + huge
        + b'</t></is></c></row><row r="2"><c r="A2"><v>1</v></c></row></sheetData></worksheet>'
    )
    path = hand_xlsx(tmp_path / "f.xlsx", "", sheet_bytes=sheet)
    del huge, sheet
    assert path.stat().st_size < 1 << 20
    tracemalloc.start()
    try:
        rows = [(r.number, r.cells, r.problem) for r in read_rows(path)]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert rows == [
        (1, {}, f"a cell longer than {xlsx_reader.MAX_CELL_CHARS} characters"),
        (2, {0: Decimal(1)}, None),
    ]
    assert peak < 4 << 20, peak


def test_memory_does_not_grow_with_the_sheet(tmp_path: Path) -> None:
    """Peak traced memory while reading 4,000 and 40,000 rows: the same few chunks."""

    def peak_of(rows: int) -> int:
        data = "".join(
            f'<row r="{n}"><c r="A{n}" t="inlineStr"><is><t>c{n}</t></is></c>'
            f'<c r="B{n}"><v>0.035</v></c></row>'
            for n in range(1, rows + 1)
        )
        path = hand_xlsx(tmp_path / f"rows-{rows}.xlsx", data)
        tracemalloc.start()
        try:
            count = sum(1 for _ in read_rows(path))
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert count == rows
        return peak

    small, large = peak_of(4_000), peak_of(40_000)
    assert large < 2 * small + (512 << 10), (small, large)


def test_shared_strings_are_kept_on_disk_and_read_back() -> None:
    with SharedStrings() as table:
        for value in ("id", "", "Счёт", None, "x" * 5000):
            table.append(value)
        assert [table[i] for i in range(len(table))] == ["id", "", "Счёт", None, "x" * 5000]


def test_a_large_shared_strings_table_does_not_grow_memory(tmp_path: Path) -> None:
    """100,000 distinct strings (Excel's way to write every text cell): held on disk."""
    count = 100_000
    data = "".join(
        f'<row r="{n + 1}"><c r="A{n + 1}" t="s"><v>{n}</v></c></row>' for n in range(count)
    )
    shared = [f"<t>carrier-message-{n:012d}</t>" for n in range(count)]
    path = hand_xlsx(tmp_path / "g.xlsx", data, shared=shared)
    del data, shared
    tracemalloc.start()
    try:
        last = deque(read_rows(path), maxlen=1)[0]
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert last.cells == {0: f"carrier-message-{count - 1:012d}"}
    # 8 bytes a string for where it ends; as Python text they would take ~8 MB.
    assert peak < 3 << 20, peak


def test_a_sheet_that_is_not_well_formed_is_refused(tmp_path: Path) -> None:
    cut = b'<worksheet><sheetData><row r="1"><c t="inlineStr"><is><t>id</t></is></c></row><row'
    path = hand_xlsx(tmp_path / "h.xlsx", "", sheet_bytes=cut)
    with pytest.raises(NotReadable, match=r"the sheet is not well-formed XML \(unclosed token\)"):
        list(read_rows(path))
