"""A large invoice is streamed: progress is reported while lines are appended, and memory does
not grow with the file (both engines). The 1,000,000-line run is bench/invoice_import.py."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

from sqlalchemy import func, select

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.reconcile.importer import CHUNK, import_invoice, plan_import

SETTINGS = Settings.model_validate({"carriers": {"mts": {"format": "kannel"}}})
HEADER = "invoice_id,carrier_message_id,message_id,billed_at,destination,parts,cost,currency\n"


def write_invoice(path: Path, lines: int) -> Path:
    with path.open("w") as out:
        out.write(HEADER)
        for n in range(lines):
            out.write(f"INV-7,carrier-{n:09d},,2026-01-15T10:{n % 60:02d}:00Z,+7916,1,0.0333,RUB\n")
    return path


def stored_lines(db: Database) -> int:
    stmt = select(func.count()).where(events.c.type == "carrier.invoiced")
    with db.read() as conn:
        return int(conn.execute(stmt).scalar_one())


def test_progress_is_reported_while_the_lines_are_appended(db: Database, tmp_path: Path) -> None:
    lines = 2 * CHUNK + 500
    path = write_invoice(tmp_path / "inv.csv", lines)
    plan = plan_import(db, SETTINGS, path, carrier="mts", fmt="csv")
    assert plan.survey.rows == lines  # the progress bar's total
    seen: dict[int, int] = {}
    calls = [0]

    def advance(n: int) -> None:
        calls[0] += n
        if calls[0] in (1, CHUNK + 1, 2 * CHUNK + 1, lines):
            seen[calls[0]] = stored_lines(db)

    summary = import_invoice(db, SETTINGS, plan, advance=advance)
    assert summary.appended == lines and calls[0] == lines
    # Each chunk is stored as soon as it is full, before the next line is even read.
    assert seen == {1: 0, CHUNK + 1: CHUNK, 2 * CHUNK + 1: 2 * CHUNK, lines: 2 * CHUNK}
    assert stored_lines(db) == lines


def _peak_import(db: Database, path: Path) -> int:
    """Peak traced bytes of planning and importing ``path``."""
    tracemalloc.start()
    try:
        plan = plan_import(db, SETTINGS, path, carrier="mts", fmt="csv")
        summary = import_invoice(db, SETTINGS, plan)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert summary.appended == plan.survey.rows
    return peak


def test_memory_does_not_grow_with_the_file(db: Database, tmp_path: Path) -> None:
    """Four times the lines (3,000 then 12,000, two invoices in one database): the peak is
    that of a chunk, not of the file."""
    small = write_invoice(tmp_path / "small.csv", 3_000)
    large = tmp_path / "large.csv"
    large.write_text(
        write_invoice(tmp_path / "l.csv", 12_000).read_text().replace("INV-7", "INV-8")
    )
    small_peak = _peak_import(db, small)
    large_peak = _peak_import(db, large)
    assert large.stat().st_size > 4 * small.stat().st_size * 0.99
    assert large_peak < 1.5 * small_peak + (1 << 20), (small_peak, large_peak)
    assert large_peak < 32 << 20, large_peak
