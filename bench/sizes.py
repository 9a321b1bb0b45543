"""Table and index size of the log per million events, on both engines and both PostgreSQL forms.

    python bench/sizes.py [--events N] [--backend sqlite|postgresql|both] [--postgres-url URL]

Appends N events of the projector bench's realistic traffic (``bench/project.py``: accepted,
submitted, 8, 4, final; one message in ten long and reported per part) through the app's
own ``append`` in batches of 10,000, then reports bytes per million events:

* SQLite: the ``events`` table and its indexes, page by page (``dbstat``);
* PostgreSQL, one table: ``pg_table_size`` (with TOAST) and ``pg_indexes_size``;
* PostgreSQL, partitioned by month (``smsrecon db partition-events`` on an empty log, then
  the same appends): the partitions' tables and indexes, and ``event_keys`` (the dedup table)
  counted with the indexes;
* the append rate of each PostgreSQL form (same process, same traffic: the ratio is what
  the key trigger costs), and the time ``partition-events`` took to convert the one-table
  log of N events.

``--postgres-url`` names a server where scratch databases ``sizes_bench_plain`` and
``sizes_bench_parts`` may be created (dropped after); without it a throwaway server is
started from the installed binaries.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.project import fill
from pipeline.db import schema
from pipeline.db.engine import Database

MILLION = 1_000_000


def per_million(size: int, count: int) -> str:
    return f"{size / count * MILLION / 1_048_576:,.0f} MiB"


def count_events(db: Database) -> int:
    with db.read() as conn:
        return int(conn.exec_driver_sql("SELECT count(*) FROM events").scalar() or 0)


def timed_fill(db: Database, events: int) -> tuple[int, float]:
    started = time.perf_counter()
    fill(db, 0, events, seed=1)
    elapsed = time.perf_counter() - started
    return count_events(db), elapsed


def report(label: str, count: int, table: int, indexes: int, extra: str = "") -> None:
    print(
        f"{label}: {count:,} events; table {per_million(table, count)}, indexes "
        f"{per_million(indexes, count)}, together {per_million(table + indexes, count)} "
        f"per million events{extra}"
    )


def sqlite_sizes(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        rows = conn.exec_driver_sql(
            "SELECT name, sum(pgsize) FROM dbstat WHERE name = 'events' OR name IN "
            "(SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = 'events') "
            "GROUP BY name"
        ).all()
    sizes = dict(rows)
    table = int(sizes.pop("events"))
    return table, int(sum(sizes.values()))


def pg_sizes(db: Database) -> tuple[int, int]:
    with db.read() as conn:
        if db.backend.events_partitioned(conn):
            table, indexes = conn.exec_driver_sql(
                "SELECT sum(pg_table_size(inhrelid)), sum(pg_indexes_size(inhrelid)) "
                "FROM pg_inherits WHERE inhparent = 'events'::regclass"
            ).one()
            keys = conn.exec_driver_sql("SELECT pg_total_relation_size('event_keys')").scalar()
            return int(table), int(indexes) + int(keys)
        table, indexes = conn.exec_driver_sql(
            "SELECT pg_table_size('events'), pg_indexes_size('events')"
        ).one()
        return int(table), int(indexes)


def run_sqlite(events: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database.from_url(f"sqlite:///{tmp}/sizes.db")
        try:
            schema.upgrade(db.engine)
            count, elapsed = timed_fill(db, events)
            table, indexes = sqlite_sizes(db)
            report("SQLite", count, table, indexes, f"; appended at {count / elapsed:,.0f} ev/s")
        finally:
            db.dispose()


def run_postgres(base: str, events: int) -> None:
    plain = Database.from_url(f"{base}/sizes_bench_plain")
    parts = Database.from_url(f"{base}/sizes_bench_parts")
    try:
        schema.upgrade(plain.engine)
        count, plain_time = timed_fill(plain, events)
        table, indexes = pg_sizes(plain)
        report("PostgreSQL, one table", count, table, indexes,
               f"; appended at {count / plain_time:,.0f} ev/s")  # fmt: skip

        schema.upgrade(parts.engine)
        with parts.write() as conn:
            parts.backend.partition_events(conn, 3)
        count, parts_time = timed_fill(parts, events)
        table, indexes = pg_sizes(parts)
        report("PostgreSQL, partitioned", count, table, indexes,
               f" (event_keys with the indexes); appended at {count / parts_time:,.0f} ev/s, "
               f"{plain_time / parts_time:.2f} of the one table's rate")  # fmt: skip

        started = time.perf_counter()
        with plain.write() as conn:
            converted = plain.backend.partition_events(conn, 3).rows
        took = time.perf_counter() - started
        print(
            f"PostgreSQL: partition-events converted {converted:,} events in {took:.1f} s "
            f"({took / converted * MILLION:.0f} s per million)"
        )
        table, indexes = pg_sizes(plain)
        report("PostgreSQL, partitioned by conversion", converted, table, indexes)
    finally:
        plain.dispose()
        parts.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--events", type=int, default=MILLION)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        run_sqlite(args.events)
    if args.backend in ("postgresql", "both"):
        from sqlalchemy import create_engine, text

        server = None
        admin = args.postgres_url
        if admin is None:
            from tests.pg_server import start_throwaway

            server = start_throwaway()
            admin = server.url
        names = ("sizes_bench_plain", "sizes_bench_parts")
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as conn:
                for name in names:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                    conn.execute(text(f"CREATE DATABASE {name}"))
            run_postgres(admin.rsplit("/", 1)[0], args.events)
        finally:
            with engine.connect() as conn:
                for name in names:
                    conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            engine.dispose()
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
