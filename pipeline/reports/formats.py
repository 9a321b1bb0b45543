"""Writing report rows: canonical CSV (what a pinned run hashes), JSON, a table, Parquet.

Money never passes through a float: CSV and JSON carry it as plain decimal text, Parquet as
``decimal128(38, 9)`` from the ``Decimal`` itself. The CSV text of a value depends on the
value alone (2.270 and 2.27 are one amount, one text), so two projections holding equal
numbers give byte-equal CSV and equal hashes.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterable, Iterator
from datetime import date, datetime
from decimal import Decimal
from typing import IO, Any

from pipeline.reports.model import BOOL, DATE, INT, MONEY, RATIO, TEXT, TIME, Report
from pipeline.times import display_time_text

#: Parquet's money scale: the projector keeps costs to 10⁻⁹; more decimals are refused.
ARROW_SCALE = 9
_QUANTUM = Decimal(1).scaleb(-ARROW_SCALE)
ARROW_BATCH = 10_000


def value_text(value: Any) -> str:
    """One value as canonical text: ISO dates, plain decimals, lower-case booleans."""
    by_type = _TEXT_OF.get(type(value))
    if by_type is not None:
        return by_type(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return _decimal_text(value)
    if isinstance(value, datetime):
        return display_time_text(value)
    if isinstance(value, date):
        return value.isoformat()
    return str(value)


def _decimal_text(value: Decimal) -> str:
    return format(value.normalize(), "f") if value else "0"


#: The exact types a report yields, looked up once per value: an itemised month is tens of
#: millions of values, and the chain of isinstance checks above was a third of its time.
#: Subclasses (never yielded today) still take the chain, so the text stays the same.
_TEXT_OF: dict[type, Any] = {
    type(None): lambda _v: "",
    str: lambda v: v,
    int: str,
    bool: lambda v: "true" if v else "false",
    Decimal: _decimal_text,
    datetime: display_time_text,
    date: date.isoformat,
}


def csv_line(values: Iterable[Any]) -> str:
    """One canonical CSV line (``\n`` ended; quoting only where CSV needs it)."""
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([value_text(v) for v in values])
    return buffer.getvalue()


def csv_lines(report: Report, rows: Iterable[tuple[Any, ...]]) -> Iterator[str]:
    """The canonical CSV, line by line: the header, then a line per row (UTF-8 encoded).

    One writer and one buffer for all lines (``csv_line``'s text, without a writer a row).
    """
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    text = value_text
    writer.writerow([text(v) for v in report.names])
    for row in rows:
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        writer.writerow([text(v) for v in row])
    yield buffer.getvalue()


def csv_sha256(lines: Iterable[str]) -> str:
    digest = hashlib.sha256()
    for line in lines:
        digest.update(line.encode("utf-8"))
    return digest.hexdigest()


def write_csv(report: Report, rows: Iterable[tuple[Any, ...]], out: IO[str]) -> int:
    count = -1
    for line in csv_lines(report, rows):
        out.write(line)
        count += 1
    return count


def json_value(value: Any, kind: str) -> Any:
    """JSON keeps ints and booleans native, money as exact decimal text."""
    if value is None or kind in (INT, BOOL):
        return value
    return value_text(value)


def write_json(report: Report, rows: Iterable[tuple[Any, ...]], out: IO[str]) -> int:
    """A JSON array of objects, written row by row (never the whole report in memory)."""
    count = 0
    out.write("[")
    for row in rows:
        item = {f.name: json_value(v, f.kind) for f, v in zip(report.columns, row, strict=True)}
        out.write(("\n" if count == 0 else ",\n") + json.dumps(item, ensure_ascii=False))
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count


def write_table(report: Report, rows: Iterable[tuple[Any, ...]], out: IO[str]) -> int:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{report.name} ({report.grain})")
    for f in report.columns:
        right = f.kind in (INT, MONEY, RATIO)
        table.add_column(f.name, justify="right" if right else "left")
    count = 0
    for row in rows:
        table.add_row(*[value_text(v) for v in row])
        count += 1
    Console(file=out, width=max(120, 12 * len(report.columns)), soft_wrap=False).print(table)
    return count


def arrow_schema(report: Report) -> Any:
    import pyarrow as pa

    types = {
        TEXT: pa.string(),
        INT: pa.int64(),
        MONEY: pa.decimal128(38, ARROW_SCALE),
        RATIO: pa.decimal128(38, ARROW_SCALE),
        DATE: pa.date32(),
        TIME: pa.timestamp("us", tz="UTC"),
        BOOL: pa.bool_(),
    }
    return pa.schema([pa.field(f.name, types[f.kind]) for f in report.columns])


def arrow_decimal(value: Decimal | None) -> Decimal | None:
    """The amount at Parquet's scale, exactly; more decimals than that are refused."""
    if value is None:
        return None
    scaled = value.quantize(_QUANTUM)
    if scaled != value:
        raise ValueError(f"{value} has more than {ARROW_SCALE} decimals: not written rounded")
    return scaled


def write_parquet(report: Report, rows: Iterable[tuple[Any, ...]], path: str) -> int:
    """Batches of rows into a Parquet file with an explicit schema (no type inferred)."""
    import pyarrow.parquet as pq

    schema = arrow_schema(report)
    decimal_at = [i for i, f in enumerate(report.columns) if f.kind in (MONEY, RATIO)]
    count = 0
    with pq.ParquetWriter(path, schema) as writer:
        batch: list[list[Any]] = []
        for row in rows:
            values = list(row)
            for i in decimal_at:
                values[i] = arrow_decimal(values[i])
            batch.append(values)
            count += 1
            if len(batch) >= ARROW_BATCH:
                writer.write_table(_arrow_table(batch, schema))
                batch = []
        if batch or count == 0:
            writer.write_table(_arrow_table(batch, schema))
    return count


def _arrow_table(batch: list[list[Any]], schema: Any) -> Any:
    import pyarrow as pa

    columns = list(zip(*batch, strict=True)) if batch else [[] for _ in schema]
    return pa.Table.from_arrays(
        [pa.array(list(col), type=f.type) for col, f in zip(columns, schema, strict=True)],
        schema=schema,
    )
