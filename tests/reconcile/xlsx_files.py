"""Workbooks for the tests: openpyxl's writer, or the few XML parts written by hand where a
test needs what openpyxl never writes (shared strings, float artifacts, a bomb)."""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

import openpyxl

_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PACKAGE = "http://schemas.openxmlformats.org/package/2006/relationships"


def write_xlsx(path: Path, rows: list[list[Any]], *, date_format: str | None = None) -> Path:
    """``rows`` through openpyxl's writer: floats as numeric cells, datetimes as date cells."""
    book = openpyxl.Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    if date_format:
        for row in sheet.iter_rows():
            for cell in row:
                if cell.is_date:
                    cell.number_format = date_format
    book.save(path)
    return path


def replace_in_sheet(path: Path, old: str, new: str) -> None:
    """Rewrite the first sheet's XML text (e.g. a ``<v>`` as another writer stores it)."""
    with zipfile.ZipFile(path) as book:
        parts = {info.filename: book.read(info) for info in book.infolist()}
    sheet = parts["xl/worksheets/sheet1.xml"].decode()
    assert old in sheet, old
    parts["xl/worksheets/sheet1.xml"] = sheet.replace(old, new).encode()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        for name, data in parts.items():
            book.writestr(name, data)


def hand_xlsx(
    path: Path,
    sheet_data: str,
    *,
    shared: list[str] | None = None,
    date_styles: int = 0,
    date1904: bool = False,
    sheet_bytes: bytes | None = None,
) -> Path:
    """A minimal workbook: ``sheet_data`` is the ``<sheetData>`` content; style 1 is a
    date format when ``date_styles``; ``shared`` the shared strings (``<si>`` XML each)."""
    workbook = (
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}">'
        f'<workbookPr date1904="{int(date1904)}"/>'
        '<sheets><sheet name="Invoice" sheetId="1" r:id="rId1"/></sheets></workbook>'
    )
    rels = (
        f'<Relationships xmlns="{_PACKAGE}">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    )
    styles = (
        f'<styleSheet xmlns="{_MAIN}"><numFmts count="1">'
        '<numFmt numFmtId="164" formatCode="dd.mm.yyyy hh:mm:ss"/></numFmts>'
        '<cellXfs count="4"><xf numFmtId="0"/><xf numFmtId="164"/><xf numFmtId="14"/>'
        '<xf numFmtId="31"/>'
        "</cellXfs></styleSheet>"
    )
    sheet = (
        sheet_bytes
        or (f'<worksheet xmlns="{_MAIN}"><sheetData>{sheet_data}</sheetData></worksheet>').encode()
    )
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        book.writestr("xl/workbook.xml", workbook)
        book.writestr("xl/_rels/workbook.xml.rels", rels)
        book.writestr("xl/styles.xml", styles if date_styles else f'<styleSheet xmlns="{_MAIN}"/>')
        if shared is not None:
            items = "".join(f"<si>{si}</si>" for si in shared)
            book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{_MAIN}">{items}</sst>')
        book.writestr("xl/worksheets/sheet1.xml", sheet)
    return path


def declare_size(path: Path, member: str, size: int) -> None:
    """Make the zip's central directory declare ``size`` uncompressed bytes for ``member``
    (what a zip bomb declares), leaving its data as it is."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    for found in re.finditer(rb"PK\x01\x02", bytes(data)):
        at = found.start()
        name_length = int.from_bytes(data[at + 28 : at + 30], "little")
        if bytes(data[at + 46 : at + 46 + name_length]) == name:
            data[at + 24 : at + 28] = size.to_bytes(4, "little")
            path.write_bytes(bytes(data))
            return
    raise AssertionError(f"{member} not in the central directory")
