"""Invoice import throughput and peak memory: N generated lines through import-invoice.

    python bench/invoice_import.py [--lines 1000000] [--format csv|xlsx]
                                   [--database-url URL]

Writes an invoice of N distinct lines (about 100 bytes a line as CSV: 1,000,000 lines are
about 100 MB) to a temporary file, then, in this process, runs what
``smsrecon reconcile import-invoice`` runs: ``plan_import`` (the first pass: SHA-256,
invoice id, period, line count; the database is asked only for the invoice's headers) and
``import_invoice`` (the second pass: lines appended 1,000 a transaction, the header last),
counting the progress callbacks. Prints the seconds and lines/s of each pass and of the
whole, and the process's peak RSS (``ru_maxrss``; goal < 300 MB whatever N). Without
--database-url: SQLite in a temporary file. A PostgreSQL URL must name an empty database
(migrated here).
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.config import Settings
from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.reconcile.importer import import_invoice, plan_import

HEADER = [
    "invoice_id",
    "carrier_message_id",
    "message_id",
    "billed_at",
    "destination",
    "parts",
    "cost",
    "currency",
]
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def line(n: int) -> list[str]:
    """Line ``n``: distinct ids, a month of times, one message in ten long."""
    at = T0 + timedelta(seconds=(n * 2.6) // 1)
    parts = 2 if n % 10 == 0 else 1
    return [
        "INV-BENCH-2026-01",
        f"carrier-msg-{n:012d}",
        f"altegio-msg-{n:012d}",
        at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        f"+7916{n % 10_000_000:07d}",
        str(parts),
        f"{parts * 0.0333:.4f}",
        "RUB",
    ]


def write_csv(path: Path, lines: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        out.write(",".join(HEADER) + "\n")
        for n in range(lines):
            out.write(",".join(line(n)) + "\n")


def write_xlsx(path: Path, lines: int) -> None:
    """A workbook as Excel writes one, streamed: every text cell in the shared-strings table
    (three distinct strings a line), times as date cells (serials with a date style), parts
    and costs as numeric cells; the same lines as the CSV."""
    fixed = [*HEADER, "INV-BENCH-2026-01", "RUB"]
    text_columns = (1, 2, 4)  # carrier_message_id, message_id, destination

    def index(n: int, column: int) -> int:
        return len(fixed) + 3 * n + text_columns.index(column)

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as book:
        for name, data in _PARTS.items():
            book.writestr(name, data)
        with book.open("xl/sharedStrings.xml", "w", force_zip64=True) as out:
            out.write(f'<sst xmlns="{_MAIN}">'.encode())
            ours = (line(n)[c] for n in range(lines) for c in text_columns)
            strings = itertools.chain(fixed, ours)  # streamed: never all at once
            for chunk in _batched(f"<si><t>{value}</t></si>" for value in strings):
                out.write(chunk)
            out.write(b"</sst>")
        with book.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as out:
            out.write(f'<worksheet xmlns="{_MAIN}"><sheetData>'.encode())
            header = "".join(f'<c t="s"><v>{i}</v></c>' for i in range(len(HEADER)))
            out.write(f'<row r="1">{header}</row>'.encode())

            def row(n: int) -> str:
                values = line(n)
                at = datetime.strptime(values[3], "%Y-%m-%dT%H:%M:%SZ")
                serial = repr((at - EPOCH).total_seconds() / 86400)
                return (
                    f'<row r="{n + 2}"><c t="s"><v>{len(HEADER)}</v></c>'
                    f'<c t="s"><v>{index(n, 1)}</v></c><c t="s"><v>{index(n, 2)}</v></c>'
                    f'<c s="1"><v>{serial}</v></c><c t="s"><v>{index(n, 4)}</v></c>'
                    f"<c><v>{values[5]}</v></c><c><v>{values[6]}</v></c>"
                    f'<c t="s"><v>{len(HEADER) + 1}</v></c></row>'
                )

            for chunk in _batched(row(n) for n in range(lines)):
                out.write(chunk)
            out.write(b"</sheetData></worksheet>")


def _batched(pieces: Iterator[str], size: int = 10_000) -> Iterator[bytes]:
    batch: list[str] = []
    for piece in pieces:
        batch.append(piece)
        if len(batch) >= size:
            yield "".join(batch).encode()
            batch.clear()
    yield "".join(batch).encode()


_MAIN = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
EPOCH = datetime(1899, 12, 30)
_PARTS = {
    "xl/workbook.xml": (
        f'<workbook xmlns="{_MAIN}" xmlns:r="{_REL}"><sheets>'
        '<sheet name="Invoice" sheetId="1" r:id="rId1"/></sheets></workbook>'
    ),
    "xl/_rels/workbook.xml.rels": (
        '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
        "</Relationships>"
    ),
    "xl/styles.xml": (
        f'<styleSheet xmlns="{_MAIN}"><cellXfs count="2"><xf numFmtId="0"/>'
        '<xf numFmtId="22"/></cellXfs></styleSheet>'
    ),
}


def run(url: str, fmt: str, lines: int, tmp: Path) -> None:
    path = tmp / f"invoice.{fmt}"
    started = time.perf_counter()
    (write_csv if fmt == "csv" else write_xlsx)(path, lines)
    written = time.perf_counter() - started
    size = path.stat().st_size / 1e6
    print(f"generated {lines:,} lines, {size:,.1f} MB {fmt} in {written:.1f}s")
    db = Database.from_url(url)
    schema.upgrade(db.engine)
    settings = Settings.model_validate({"carriers": {"bench": {"format": "generic"}}})
    advanced = [0]

    def advance(n: int) -> None:
        advanced[0] += n

    try:
        started = time.perf_counter()
        plan = plan_import(db, settings, path, carrier="bench", fmt=fmt)
        surveyed = time.perf_counter() - started
        started = time.perf_counter()
        summary = import_invoice(db, settings, plan, advance=advance)
        appended = time.perf_counter() - started
    finally:
        db.dispose()
    total = surveyed + appended
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert summary.appended == lines and summary.quarantined == 0, summary
    assert advanced[0] == plan.survey.rows == lines, (advanced[0], plan.survey.rows)
    print(f"first pass (hash, survey): {surveyed:.1f}s = {lines / surveyed:,.0f} lines/s")
    print(f"second pass (append): {appended:.1f}s = {lines / appended:,.0f} lines/s")
    print(f"import: {total:.1f}s = {lines / total:,.0f} lines/s; progress calls {advanced[0]:,}")
    print(f"peak RSS {rss:.0f} MB (goal < 300)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--format", choices=["csv", "xlsx"], default="csv")
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        print(f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}, {args.format}")
        run(url, args.format, args.lines, Path(tmp))


if __name__ == "__main__":
    main()
