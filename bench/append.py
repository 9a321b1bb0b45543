"""Append throughput of the event log beside the bare driver's executemany.

    python bench/append.py [--events N] [--batch N] [--backend sqlite|postgresql|both]
                           [--postgres-url URL]

Both sides insert the same rows, from the same in-memory events, into a freshly migrated
`events` table, one transaction per batch. The raw baseline is the driver alone (sqlite3 /
psycopg `executemany`, serialising each row's payload to JSON); `append()` adds what the
log promises: de-duplication by key, the position of every stored event, the PostgreSQL
append lock, UTC handling. Without
--postgres-url a throwaway PostgreSQL server is started from the installed binaries.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.db import schema
from pipeline.db.engine import Database, make_engine
from pipeline.eventlog import NewEvent, append

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def make_events(n: int, tag: str) -> list[NewEvent]:
    return [
        NewEvent(
            type="carrier.status",
            occurred_at=T0 + timedelta(milliseconds=i),
            source="bench",
            message_id=f"m{i}",
            carrier="mts",
            carrier_message_id=f"{tag}-{i:08x}",
            payload={"raw_status": "DELIVRD", "status": 1, "cost": "0.0333", "currency": "EUR"},
        )
        for i in range(n)
    ]


def raw_rows(events: list[NewEvent], dialect: str) -> list[tuple]:
    now = datetime.now(UTC)

    def ts(value: datetime) -> object:
        return value.replace(tzinfo=None).isoformat(" ") if dialect == "sqlite" else value

    return [
        (
            e.type,
            e.message_id,
            e.carrier,
            e.carrier_message_id,
            ts(e.occurred_at),
            ts(now),
            e.source,
            json.dumps(e.payload),
            e.dedup_key,
        )
        for e in events
    ]


INSERT = (
    "INSERT INTO events (type, message_id, carrier, carrier_message_id, occurred_at, "
    "recorded_at, source, payload, dedup_key) VALUES ({})"
)


def time_append(url: str, events: list[NewEvent], batch: int) -> float:
    db = Database(make_engine(url))
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        append(db, events[i : i + batch])
    elapsed = time.perf_counter() - start
    db.dispose()
    return elapsed


def time_raw_sqlite(path: str, events: list[NewEvent], batch: int) -> float:
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    sql = INSERT.format(", ".join("?" * 9))
    start = time.perf_counter()
    for i in range(0, len(events), batch):
        conn.execute("BEGIN IMMEDIATE")
        conn.executemany(sql, raw_rows(events[i : i + batch], "sqlite"))
        conn.execute("COMMIT")
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def time_raw_postgres(url: str, events: list[NewEvent], batch: int) -> float:
    import psycopg

    dsn = url.replace("postgresql+psycopg://", "postgresql://")
    sql = INSERT.format(", ".join(["%s"] * 9))
    with psycopg.connect(dsn) as conn:
        start = time.perf_counter()
        for i in range(0, len(events), batch):
            with conn.transaction(), conn.cursor() as cur:
                cur.executemany(sql, raw_rows(events[i : i + batch], "postgresql"))
        return time.perf_counter() - start


def fresh_sqlite(folder: Path, name: str) -> str:
    url = f"sqlite:///{folder / name}"
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


def fresh_postgres(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = make_engine(url)
    schema.upgrade(engine)
    engine.dispose()
    return url


def report(backend: str, n: int, ours: float, raw: float) -> None:
    ours_rate, raw_rate = n / ours, n / raw
    print(
        f"{backend:<10} append {ours_rate:>10,.0f} ev/s   raw executemany {raw_rate:>10,.0f} ev/s"
        f"   ratio {ours_rate / raw_rate:.2f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=1_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()

    events = make_events(args.events, "b")
    print(f"{args.events:,} events in batches of {args.batch:,}")
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            ours = time_append(fresh_sqlite(folder, "ours.db"), events, args.batch)
            raw_url = fresh_sqlite(folder, "raw.db")
            raw = time_raw_sqlite(raw_url.removeprefix("sqlite:///"), events, args.batch)
            report("sqlite", args.events, ours, raw)
    if args.backend in ("postgresql", "both"):
        server = None
        admin_url = args.postgres_url
        if admin_url is None:
            from tests.pg_server import start_throwaway

            server = start_throwaway()
            admin_url = server.url
        try:
            ours = time_append(fresh_postgres(admin_url, "bench_append_ours"), events, args.batch)
            raw_url = fresh_postgres(admin_url, "bench_append_raw")
            raw = time_raw_postgres(raw_url, events, args.batch)
            report("postgresql", args.events, ours, raw)
        finally:
            if server is not None:
                server.stop()


if __name__ == "__main__":
    main()
