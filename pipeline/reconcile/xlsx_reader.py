"""The first worksheet of an .xlsx file as rows of exact values, streamed.

openpyxl reads a numeric cell as a float, and money must never pass through one, so the
sheet's XML is read here with expat straight from the zip, a chunk at a time: each cell's
``<v>`` text becomes a Decimal (``xlsx_cells.number``), a cell whose style has a date number
format becomes a zoneless datetime, shared and inline strings become text. openpyxl is used
for what it knows and we would only copy: which number formats are dates
(``is_date_format``) and the built-in formats by id (``BUILTIN_FORMATS``).

Memory stays bounded whatever the sheet's size: rows are handed on as they end, a cell keeps
at most MAX_CELL_CHARS characters, a row at most 16,384 columns. What cannot be streamed is
bounded and refused beyond its bound (``NotReadable``): the shared-strings table (cells refer
to it by index, so it is held: on disk, 8 bytes a string in memory, MAX_SHARED_STRINGS of
them), the small parts (workbook, relationships, styles: MAX_PART_BYTES each), and a sheet
or a strings table declaring more than MAX_SHEET_BYTES of XML (a zip bomb; one smaller than
that is streamed like any other). A DOCTYPE is
refused: a workbook has none, and entities are the way XML bombs expand.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any
from xml.parsers import expat

from openpyxl.styles.numbers import BUILTIN_FORMATS, is_date_format

from pipeline.reconcile import xlsx_cells
from pipeline.reconcile.xlsx_strings import SharedStrings

#: Characters kept of one cell; a longer one makes its row an error (no field is that long).
MAX_CELL_CHARS = 4096
#: Shared strings (8 bytes of memory each; the text is on disk).
MAX_SHARED_STRINGS = 10_000_000
#: Uncompressed bytes of the workbook, relationship and styles parts.
MAX_PART_BYTES = 16 * 1024 * 1024
#: Uncompressed bytes a sheet may declare: about 6 million invoice lines.
MAX_SHEET_BYTES = 1 << 30
#: Bytes read from the zip per expat call.
CHUNK_BYTES = 1 << 16

#: Built-in number formats that are East Asian dates or times (ECMA-376 Part 1, 18.8.30:
#: ``yyyy"年"m"月"d"日"`` and the like); openpyxl's BUILTIN_FORMATS stops at the Western ones.
_LOCALE_DATE_FORMATS = frozenset(range(27, 37)) | frozenset(range(50, 59))
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_WORKSHEET = _REL + "/worksheet"


class NotReadable(Exception):
    """The file is no workbook we can read, or exceeds a bound; the message is one line."""


@dataclass(frozen=True, slots=True)
class SheetRow:
    """A row of the sheet: its number (row 1 is the first), its cells by column (0 is A),
    and why it cannot be read, if it cannot."""

    number: int
    cells: dict[int, Any]
    problem: str | None = None


def read_rows(path: Path) -> Iterator[SheetRow]:
    """The rows of the workbook's first worksheet that hold any cell, in order."""
    try:
        book = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, zipfile.LargeZipFile):
        raise NotReadable("not an .xlsx workbook (not a zip file)") from None
    with book:
        sheet, date1904 = _first_sheet(book)
        date_styles = _date_styles(book)
        info = _member(book, sheet)
        _check_size(info, "the first sheet")
        with SharedStrings() as shared:
            _read_shared_strings(book, shared)
            sheet_reader = _SheetParser(shared, date_styles, date1904)
            with book.open(info) as stream:
                yield from _stream(stream, sheet_reader.parser, sheet_reader.ready, "the sheet")


def _check_size(info: zipfile.ZipInfo, what: str) -> None:
    if info.file_size > MAX_SHEET_BYTES:
        raise NotReadable(
            f"{what} declares {info.file_size} bytes of XML, more than "
            f"{MAX_SHEET_BYTES} (split the invoice)"
        )


def _stream(stream: Any, parser: Any, ready: list[SheetRow], what: str) -> Iterator[SheetRow]:
    """Feed ``stream`` to ``parser`` a chunk at a time, handing on the rows each chunk ends."""
    try:
        while block := stream.read(CHUNK_BYTES):
            parser.Parse(block, False)
            yield from ready
            ready.clear()
        parser.Parse(b"", True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code)
        raise NotReadable(f"{what} is not well-formed XML ({reason})") from None
    except (zipfile.BadZipFile, EOFError) as exc:
        raise NotReadable(f"a damaged zip: {exc}") from None
    yield from ready


def _member(book: zipfile.ZipFile, name: str) -> zipfile.ZipInfo:
    try:
        return book.getinfo(name)
    except KeyError:
        raise NotReadable(f"not an .xlsx workbook (no {name})") from None


def _part(book: zipfile.ZipFile, name: str) -> bytes | None:
    """A small part's bytes, None when the workbook has no such part."""
    try:
        info = book.getinfo(name)
    except KeyError:
        return None
    if info.file_size > MAX_PART_BYTES:
        raise NotReadable(f"{name} declares {info.file_size} bytes, more than {MAX_PART_BYTES}")
    try:
        return book.read(info)
    except (zipfile.BadZipFile, EOFError, NotImplementedError) as exc:
        raise NotReadable(f"a damaged zip: {exc}") from None


def _parser(
    start: Callable[[str, dict[str, str]], None] | None = None,
    end: Callable[[str], None] | None = None,
    text: Callable[[str], None] | None = None,
) -> Any:
    """An expat parser calling back with local names (``c``, not ``{ns}c``); no DOCTYPE."""
    parser = expat.ParserCreate(namespace_separator="}")

    def refuse(*_args: Any) -> None:
        raise NotReadable("the workbook's XML has a DOCTYPE (refused: a workbook has none)")

    parser.StartDoctypeDeclHandler = refuse
    parser.EntityDeclHandler = refuse
    parser.buffer_text = True
    if start:
        parser.StartElementHandler = lambda name, attrs: start(name.rpartition("}")[2], attrs)
    if end:
        parser.EndElementHandler = lambda name: end(name.rpartition("}")[2])
    if text:
        parser.CharacterDataHandler = text
    return parser


def _elements(data: bytes, where: str) -> list[tuple[str, str, dict[str, str]]]:
    """(name, parent's name, attributes) of every element of a small part."""
    found: list[tuple[str, str, dict[str, str]]] = []
    path: list[str] = [""]

    def start(name: str, attrs: dict[str, str]) -> None:
        found.append((name, path[-1], attrs))
        path.append(name)

    parser = _parser(start, lambda name: path.pop())
    try:
        parser.Parse(data, True)
    except expat.ExpatError as exc:
        reason = expat.ErrorString(exc.code)
        raise NotReadable(f"{where} is not well-formed XML ({reason})") from None
    return found


def _first_sheet(book: zipfile.ZipFile) -> tuple[str, bool]:
    """The zip member of the first worksheet, and whether dates count from 1904."""
    workbook = _part(book, "xl/workbook.xml")
    rels = _part(book, "xl/_rels/workbook.xml.rels")
    if workbook is None or rels is None:
        raise NotReadable("not an .xlsx workbook (no xl/workbook.xml)")
    date1904, first = False, None
    for name, _parent, attrs in _elements(workbook, "xl/workbook.xml"):
        if name == "workbookPr":
            date1904 = attrs.get("date1904", "0").lower() in ("1", "true")
        elif name == "sheet" and first is None:
            first = attrs.get(_REL + "}id")
    targets = {
        attrs.get("Id"): attrs.get("Target", "")
        for name, _parent, attrs in _elements(rels, "xl/_rels/workbook.xml.rels")
        if name == "Relationship" and attrs.get("Type") == _WORKSHEET
    }
    if first is None or first not in targets:
        raise NotReadable("the workbook has no worksheet")
    target = targets[first]
    path = target.lstrip("/") if target.startswith("/") else posixpath.join("xl", target)
    return posixpath.normpath(path), date1904


def _date_styles(book: zipfile.ZipFile) -> frozenset[int]:
    """The cell styles (``s`` indices) whose number format is a date or a time."""
    styles = _part(book, "xl/styles.xml")
    if styles is None:
        return frozenset()
    custom: dict[int, str] = {}
    formats: list[int] = []
    for name, parent, attrs in _elements(styles, "xl/styles.xml"):
        if name == "numFmt" and attrs.get("numFmtId", "").isdigit():
            custom[int(attrs["numFmtId"])] = attrs.get("formatCode", "")
        elif name == "xf" and parent == "cellXfs":
            number_format = attrs.get("numFmtId", "0")
            formats.append(int(number_format) if number_format.isdigit() else 0)
    return frozenset(
        index
        for index, fmt_id in enumerate(formats)
        if is_date_format(custom.get(fmt_id, BUILTIN_FORMATS.get(fmt_id)))
        or (fmt_id in _LOCALE_DATE_FORMATS and fmt_id not in custom)
    )


def _read_shared_strings(book: zipfile.ZipFile, table: SharedStrings) -> None:
    """The shared strings table (None for one longer than MAX_CELL_CHARS), streamed in."""
    try:
        info = book.getinfo("xl/sharedStrings.xml")
    except KeyError:
        return
    _check_size(info, "the shared strings")
    collector = _Text()

    def start(name: str, attrs: dict[str, str]) -> None:
        if name == "si":
            collector.reset()
        elif name == "rPh":  # a phonetic reading, not the text
            collector.skip += 1
        elif name == "t":
            collector.on = True

    def end(name: str) -> None:
        if name == "t":
            collector.on = False
        elif name == "rPh":
            collector.skip -= 1
        elif name == "si":
            if len(table) >= MAX_SHARED_STRINGS:
                raise NotReadable(f"more than {MAX_SHARED_STRINGS} shared strings")
            table.append(collector.value())

    parser = _parser(start, end, collector.add)
    ready: list[SheetRow] = []
    with book.open(info) as stream:
        for _ in _stream(stream, parser, ready, "xl/sharedStrings.xml"):
            pass


class _Text:
    """A cell's text as it arrives, at most MAX_CELL_CHARS of it kept."""

    __slots__ = ("length", "on", "parts", "skip")

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.length = 0
        self.on = False
        self.skip = 0

    def reset(self) -> None:
        self.parts.clear()
        self.length = 0
        self.on = False

    def add(self, data: str) -> None:
        if self.on and not self.skip:
            self.length += len(data)
            if self.length <= MAX_CELL_CHARS:
                self.parts.append(data)

    def value(self) -> str | None:
        """The text, None when it was longer than MAX_CELL_CHARS."""
        return "".join(self.parts) if self.length <= MAX_CELL_CHARS else None


class _SheetParser:
    """expat callbacks turning ``<row>``/``<c>`` elements into SheetRows in ``ready``."""

    def __init__(self, shared: SharedStrings, date_styles: frozenset[int], date1904: bool):
        self.shared, self.date_styles, self.date1904 = shared, date_styles, date1904
        self.ready: list[SheetRow] = []
        self.text = _Text()
        self.row = 0
        self.cells: dict[int, Any] = {}
        self.problem: str | None = None
        self.column = 0
        self.kind = "n"
        self.style = 0
        self.parser = _parser(self.start, self.end, self.text.add)

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if name == "c":
            reference = attrs.get("r")
            column = self.column if reference is None else xlsx_cells.column_index(reference)
            if column is None or column >= xlsx_cells.MAX_COLUMN:
                self.problem = self.problem or "a cell beyond column XFD"
                column = xlsx_cells.MAX_COLUMN - 1
            self.column = column
            self.kind = attrs.get("t", "n")
            style = attrs.get("s", "0")
            self.style = int(style) if style.isdigit() else 0
            self.text.reset()
        elif name in ("v", "t"):
            self.text.on = True
        elif name == "rPh":
            self.text.skip += 1
        elif name == "row":
            number = attrs.get("r", "")
            self.row = int(number) if number.isdigit() and len(number) < 10 else self.row + 1
            self.cells = {}
            self.problem = None
            self.column = 0

    def end(self, name: str) -> None:
        if name in ("v", "t"):
            self.text.on = False
        elif name == "rPh":
            self.text.skip -= 1
        elif name == "c":
            self._cell()
        elif name == "row" and (self.cells or self.problem):
            self.ready.append(SheetRow(self.row, self.cells, self.problem))

    def _cell(self) -> None:
        column = self.column
        self.column = column + 1
        text = self.text.value()
        if text is None:
            self.problem = self.problem or f"a cell longer than {MAX_CELL_CHARS} characters"
            return
        value = self._value(text)
        if value is not None and value != "":
            self.cells[column] = value

    def _value(self, text: str) -> Any:
        kind = self.kind
        if kind == "s":
            if not text.strip().isdigit() or int(text) >= len(self.shared):
                self.problem = self.problem or "a shared string that is not in the table"
                return None
            found = self.shared[int(text)]
            if found is None:
                self.problem = self.problem or f"a cell longer than {MAX_CELL_CHARS} characters"
            return found
        if kind == "b":
            return "TRUE" if text.strip() == "1" else "FALSE"
        if kind != "n" or not text:
            return text  # inlineStr, str (a formula's text), e (#N/A) and d (ISO) as written
        if self.style in self.date_styles:
            moment = xlsx_cells.date_serial(text, date1904=self.date1904)
            return text if moment is None else moment
        amount: Decimal | None = xlsx_cells.number(text)
        return text if amount is None else amount
