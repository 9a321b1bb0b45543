"""An invoice file's data rows, whatever its format: (row, fields or a ParseError, raw text).

Every reader streams (a CSV or JSON-lines file through its text, an .xlsx through its
sheet's XML), so memory does not grow with the file. Row numbers are where a person looks:
a CSV's or a sheet's header is row 1, a JSON-lines file counts its lines from 1.
"""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

from pipeline.config import InvoiceSettings
from pipeline.ingest.adapters import bounded
from pipeline.ingest.adapters.base import ParseError
from pipeline.reconcile import xlsx_reader
from pipeline.reconcile.lines import missing_columns

FORMATS = ("csv", "jsonl", "xlsx")
_SUFFIXES = ((".csv", "csv"), (".jsonl", "jsonl"), (".ndjson", "jsonl"), (".xlsx", "xlsx"))


class InvoiceRefused(Exception):
    """The whole file or command is refused (exit 2); the message is one line."""


def format_of(path: Path, fmt: str | None) -> str:
    if fmt is not None:
        return fmt
    name = path.name.lower().removesuffix(".gz")
    for suffix, kind in _SUFFIXES:
        if name.endswith(suffix):
            return kind
    raise InvoiceRefused(f"{path.name}: cannot tell the format from the name (use --format)")


def open_file(path: Path) -> IO[bytes]:
    """The file's bytes, gunzipped when its name ends in .gz."""
    raw = path.open("rb")
    return gzip.GzipFile(fileobj=raw) if path.name.lower().endswith(".gz") else raw  # type: ignore[return-value]


def read_rows(path: Path, fmt: str, layout: InvoiceSettings, have_id: bool) -> Iterator[Any]:
    """(row number, fields or a ParseError, the row's raw text) for each data row."""
    if fmt == "xlsx":
        yield from _xlsx_rows(path, layout, have_id)
        return
    with open_file(path) as binary:
        text = io.TextIOWrapper(binary, encoding="utf-8", newline="")
        if fmt == "csv":
            yield from _csv_rows(path, text, layout, have_id)
        else:
            yield from _jsonl_rows(text)


def check_header(path: Path, header: list[str], layout: InvoiceSettings, have_id: bool) -> None:
    missing = missing_columns(header, layout, have_id=have_id)
    if missing:
        raise InvoiceRefused(
            f"{path.name}: wrong columns: missing {', '.join(missing)} "
            f"(header has {', '.join(header)[:200]})"
        )


def _csv_rows(path: Path, text: IO[str], layout: InvoiceSettings, have_id: bool) -> Iterator[Any]:
    reader = csv.reader(text, delimiter=layout.delimiter)
    try:
        header = next(reader)
    except StopIteration:
        raise InvoiceRefused(f"{path.name}: empty file: no header and no lines") from None
    except (csv.Error, UnicodeDecodeError) as exc:
        raise InvoiceRefused(f"{path.name}: unreadable header: {exc}") from None
    header = [name.strip().lstrip("\ufeff") for name in header]
    check_header(path, header, layout, have_id)
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except UnicodeDecodeError as exc:
            raise InvoiceRefused(f"{path.name}: not UTF-8 text ({exc.reason})") from None
        except csv.Error as exc:
            yield reader.line_num, ParseError("row", str(exc)), ""
            continue
        raw = raw_text(values, layout.delimiter)
        if not any(v.strip() for v in values):
            continue
        if len(values) != len(header):
            found = ParseError("row", f"{len(values)} fields, the header has {len(header)}")
            yield reader.line_num, found, raw
        else:
            yield reader.line_num, dict(zip(header, values, strict=True)), raw


def _jsonl_rows(text: IO[str]) -> Iterator[Any]:
    for number, line in enumerate(text, start=1):
        if not line.strip():
            continue
        try:
            document = bounded.load_json(line)
            bounded.check_document(document)
        except (ParseError, bounded.Refused, ValueError) as exc:
            yield number, ParseError("line", f"not a JSON object: {exc}"), line
            continue
        if not isinstance(document, dict):
            yield number, ParseError("line", "not a JSON object"), line
        else:
            yield number, document, line


def _xlsx_rows(path: Path, layout: InvoiceSettings, have_id: bool) -> Iterator[Any]:
    """The first sheet's first row holding a cell is its header (row 1 in a plain sheet);
    cells are mapped through the same column map as a CSV's fields."""
    try:
        sheet = xlsx_reader.read_rows(path)
        first = next(sheet, None)
        if first is None:
            raise InvoiceRefused(f"{path.name}: empty file: no header and no lines")
        if first.problem or not first.cells:
            raise InvoiceRefused(f"{path.name}: unreadable header: {first.problem}")
        header = [""] * (max(first.cells) + 1)
        for column, value in first.cells.items():
            header[column] = str(value).strip()
        check_header(path, header, layout, have_id)
        for row in sheet:
            values = [row.cells.get(column) for column in range(len(header))]
            raw = raw_text(["" if v is None else str(v) for v in values], layout.delimiter)
            beyond = [column for column in row.cells if column >= len(header)]
            if row.problem:
                yield row.number, ParseError("row", row.problem), raw
            elif beyond:
                reason = f"a value in column {beyond[0] + 1}, the header has {len(header)}"
                yield row.number, ParseError("row", reason), raw
            else:
                fields = {name: v for name, v in zip(header, values, strict=True) if name}
                yield row.number, fields, raw
    except xlsx_reader.NotReadable as exc:
        raise InvoiceRefused(f"{path.name}: {exc}") from None


def raw_text(values: list[str], delimiter: str) -> str:
    """A row as one CSV line (what the quarantine keeps of it)."""
    out = io.StringIO()
    csv.writer(out, delimiter=delimiter).writerow(values)
    return out.getvalue()
