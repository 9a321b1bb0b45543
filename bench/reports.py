"""Reports and views over a month of 1,000,000 messages, on SQLite and PostgreSQL.

    python bench/reports.py [--messages 1000000] [--before 50000] [--runs 3]
                            [--backend sqlite|postgresql|both] [--pg-admin-url URL]
                            [--sqlite-path FILE] [--keep] [--skip-seed] [--plans]
                            [--code DIR]

Writes the month (``bench/report_month.py``: message_state rows, invoices, invoice lines,
mismatches, through the projector's bulk path; no events are folded, so this measures
reading the projection, not projecting it), plus ``--before`` messages of the month before,
which every month filter must leave out. Then, ``--runs`` times each:

- every ``smsrecon report NAME --from 2026-01-01 --to 2026-02-01 --format csv --output
  /dev/null``, each its own process: wall seconds and peak RSS (``/usr/bin/time``);
- every view, ``SELECT * FROM v_...`` filtered to the month and fetched fully (streamed,
  rows counted), in this process.

Prints the median of each and its row count. PostgreSQL: a scratch database
``report_bench_scratch`` is created on the server of --pg-admin-url and dropped after
(unless --keep). SQLite: a temporary file, or --sqlite-path (kept; --skip-seed reuses it).
--plans prints the query plans (EXPLAIN / EXPLAIN QUERY PLAN) of the month filters.
--code DIR runs the report commands from another checkout (``python -m pipeline`` in DIR),
to time the code before a change against the same data.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report_month import REPORTING_CURRENCY, Month, seed
from pipeline.db import schema
from pipeline.db.engine import Database

START, END = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
REPORTS = ("billing", "delivery", "costs", "margin", "mismatches", "invoices", "messages")
DAY = "day >= :first AND day < :after"
#: Each view's month filter, on the column a BI tool would filter by.
VIEWS = {
    "v_billing_daily": DAY,
    "v_delivery_daily": DAY,
    "v_carrier_costs": DAY,
    "v_margin_daily": DAY,
    "v_message_status": "accepted_at >= :start AND accepted_at < :end",
    "v_open_mismatches": "opened_at >= :start AND opened_at < :end",
    "v_invoices": "period_from < :end AND period_to > :start",
}
PG_NAME = "report_bench_scratch"


def params(backend: str) -> dict[str, object]:
    """The month's bounds as each engine stores times (SQLite: naive UTC text)."""
    if backend == "sqlite":
        start, end = (t.strftime("%Y-%m-%d %H:%M:%S.%f") for t in (START, END))
    else:
        start, end = START, END  # type: ignore[assignment]
    return {"first": "2026-01-01", "after": "2026-02-01", "start": start, "end": end}


def time_report(
    url: str, name: str, config: Path, tmp: Path, code: str | None
) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MB, the command's last stderr line) of one report process.

    Through ``/usr/bin/time``: a child's own ``wait4`` figure would start from this
    process's high-water mark (Linux carries it across fork and exec), and this process
    held the seeded month.
    """
    figures = tmp / "time.txt"
    argv = ["/usr/bin/time", "-f", "%e %M", "-o", str(figures),
            sys.executable, "-m", "pipeline", "--config", str(config), "--database-url", url,
            "report", name, "--from", "2026-01-01", "--to", "2026-02-01",
            "--format", "csv", "--output", os.devnull]  # fmt: skip
    done = subprocess.run(argv, stderr=subprocess.PIPE, text=True, check=False, cwd=code)
    if done.returncode != 0:
        raise SystemExit(f"report {name} failed ({done.returncode}): {done.stderr[-2000:]}")
    wall, kb = figures.read_text().split()
    return float(wall), int(kb) / 1024, done.stderr.strip().splitlines()[-1]


def time_view(db: Database, backend: str, view: str) -> tuple[float, int]:
    sql = text(f"SELECT * FROM {view} WHERE {VIEWS[view]}")
    started = time.perf_counter()
    count = 0
    with db.snapshot() as conn:
        for part in (
            conn.execution_options(yield_per=5000).execute(sql, params(backend)).partitions()
        ):
            count += len(part)
    return time.perf_counter() - started, count


def plans(db: Database, backend: str) -> None:
    scan = (
        "SELECT accepted_at, partner, currency_iso, parts_amount, payment_sum "
        "FROM message_state WHERE accepted_at >= :start AND accepted_at < :end"
    )
    ordered = scan + " ORDER BY accepted_at, message_id"
    queries = {"report scan (billing)": scan, "report scan (messages, ordered)": ordered}
    queries |= {view: f"SELECT * FROM {view} WHERE {VIEWS[view]}" for view in VIEWS}
    explain = "EXPLAIN QUERY PLAN " if backend == "sqlite" else "EXPLAIN "
    with db.snapshot() as conn:
        for name, sql in queries.items():
            print(f"-- {name}")
            for row in conn.execute(text(explain + sql), params(backend)):
                print("  ", row[-1] if backend == "sqlite" else row[0])


def run(url: str, backend: str, args: argparse.Namespace, config: Path) -> None:
    db = Database.from_url(url)
    try:
        schema.upgrade(db.engine)  # also brings a kept database to the head revision
        if not args.skip_seed:
            started = time.perf_counter()
            seed(db, Month(START, END, args.messages), before=args.before)
            print(f"{backend}: seeded {args.messages:,} + {args.before:,} messages "
                  f"in {time.perf_counter() - started:.0f}s")  # fmt: skip
            if backend == "postgresql":
                with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
                    c.execute(text("VACUUM ANALYZE"))
            else:
                with db.write() as c:
                    c.execute(text("ANALYZE"))
        if args.plans:
            plans(db, backend)
        print(f"| {backend} | what | median s (runs) | rows | peak RSS |")
        for name in REPORTS:
            walls, rss = [], []
            for _ in range(args.runs):
                wall, peak, note = time_report(url, name, config, config.parent, args.code)
                walls.append(wall)
                rss.append(peak)
            runs = ", ".join(f"{w:.2f}" for w in walls)
            median = statistics.median(walls)
            peak = max(rss)
            print(f"| {backend} | report {name} | {median:.2f} ({runs}) | {note} | {peak:.0f} MB |")
        for view in VIEWS:
            walls, count = [], 0
            for _ in range(args.runs):
                wall, count = time_view(db, backend, view)
                walls.append(wall)
            print(f"| {backend} | {view} | {statistics.median(walls):.2f} "
                  f"({', '.join(f'{w:.2f}' for w in walls)}) | {count:,} | |")  # fmt: skip
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--before", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument(
        "--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--sqlite-path", default=None)
    parser.add_argument("--keep", action="store_true", help="keep the scratch databases")
    parser.add_argument("--skip-seed", action="store_true", help="reuse a kept database")
    parser.add_argument("--plans", action="store_true")
    parser.add_argument(
        "--code", default=None, help="run the reports from this checkout (before/after)"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.yaml"
        config.write_text(f"finance:\n  reporting_currency: {REPORTING_CURRENCY}\n")
        if args.backend in ("sqlite", "both"):
            path = args.sqlite_path or f"{tmp}/reports.db"
            run(f"sqlite:///{path}", "sqlite", args, config)
        if args.backend in ("postgresql", "both"):
            admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
            url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{PG_NAME}"
            if not args.skip_seed:
                with admin.connect() as conn:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME}"))
                    conn.execute(text(f"CREATE DATABASE {PG_NAME}"))
            try:
                run(url, "postgresql", args, config)
            finally:
                if not args.keep:
                    with admin.connect() as conn:
                        conn.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME}"))
                admin.dispose()


if __name__ == "__main__":
    main()
