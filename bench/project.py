"""Projector catch-up throughput, incremental cost and peak memory.

    python bench/project.py [--events N] [--backend sqlite|postgresql|both] [--postgres-url URL]
                            [--by-statement]

For each backend, on a freshly migrated database:

1. appends N events of realistic traffic (accepted, submitted, 8, 4, final; one message in
   ten long and reported per part; some reports before their submission);
2. times a raw scan of the same rows by the bare driver (sqlite3 / psycopg cursor, every
   column, position order, keyset batches of the projector's batch size, JSON payload
   decoded): the floor any reader of the log pays;
3. times ``catch_up`` from position 0 to the head (batch size 5,000): the projector;
4. incremental cost: appends 1,000 new events and times projecting them, five times (the
   median), on this N-event log and on a 10,000-event log (ratio; goal <= 1.5);
5. reports peak RSS of the process (goal < 300 MB).

Beside each wall-clock time it prints the process's CPU time for the same step: on a shared,
loaded machine the wall clock mostly measures the wait for a core, while the CPU time of the
scan and of the catch-up still compare (on SQLite all the work is in this process; on
PostgreSQL the server's share is not in it).

Without --postgres-url a throwaway PostgreSQL server is started from the installed binaries.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import NewEvent, append
from pipeline.projector.derive import FoldRules
from pipeline.projector.runner import catch_up

T0 = datetime(2026, 1, 1, tzinfo=UTC)
RULES = FoldRules(
    tariffs=[
        TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB"),
        TariffRule(prefix="+1", price_per_part=Decimal("0.0075"), currency="USD"),
    ]
)
BATCH = 5_000


def traffic(start: int, count: int, seed: int) -> Iterator[NewEvent]:
    """About ``count`` events for messages numbered from ``start`` (~5 events a message)."""
    rng = random.Random(seed)
    made = 0
    n = start
    while made < count:
        mid = f"b{n}"
        at = T0 + timedelta(seconds=n)
        long = n % 10 == 0
        out = [
            NewEvent("message.accepted", at, "bench",
                     {"partner": "default", "phone": rng.choice(["+79161234567", "+14155550100"]),
                      "channel": "sms", "dispatch_type": "service", "free": False,
                      "text": "a" * (200 if long else 60)},
                     message_id=mid, dedup_key=f"accepted:{mid}"),
        ]  # fmt: skip
        cmids = [f"{mid}-1", f"{mid}-2"] if long else [f"{mid}-1"]
        for part, cmid in enumerate(cmids, start=1):
            extra = {"part": part, "parts": 2} if long else {}
            sub = NewEvent("carrier.submitted", at + timedelta(seconds=1), "bench", extra,
                           message_id=mid, carrier="mts", carrier_message_id=cmid,
                           dedup_key=f"submitted:mts:{cmid}")  # fmt: skip
            reports = [
                NewEvent("carrier.status", at + timedelta(seconds=dt), "bench",
                         {"format": "generic", "raw_status": str(s), "status": s,
                          **({"cost": "0.0333", "currency": "EUR", "cost_scope": "part"}
                             if s == 1 else {})},
                         carrier="mts", carrier_message_id=cmid,
                         dedup_key=f"dlr:mts:{cmid}:-:{s}:-")
                for s, dt in ((8, 2), (4, 3), (rng.choice([1, 1, 1, 2]), 10))
            ]  # fmt: skip
            if rng.random() < 0.05:
                out += [reports[0], sub, *reports[1:]]  # a report before its submission
            else:
                out += [sub, *reports]
        made += len(out)
        n += 1
        yield from out


def fill(db: Database, start: int, count: int, seed: int) -> int:
    """Append about ``count`` events in chunks; returns the next message number."""
    chunk: list[NewEvent] = []
    total = 0
    messages = start
    for event in traffic(start, count, seed):
        chunk.append(event)
        if event.type == "message.accepted":
            messages += 1
        if len(chunk) >= 10_000:
            append(db, chunk)
            total += len(chunk)
            chunk = []
    if chunk:
        append(db, chunk)
    return messages


def raw_scan(db: Database) -> tuple[float, float]:
    """Seconds for the bare driver to read every event as the projector must: in position
    order, in keyset batches of the projector's batch size (``position > last ORDER BY
    position LIMIT n``), every column, the JSON payload decoded (psycopg decodes JSONB
    itself; sqlite3 hands back text, decoded here with ``json.loads``). Also the CPU seconds."""
    raw = db.engine.raw_connection()
    mark = "%s" if db.is_postgres else "?"
    sql = (
        "SELECT position, type, message_id, carrier, carrier_message_id, occurred_at, "
        f"recorded_at, source, payload, dedup_key FROM events WHERE position > {mark} "
        f"ORDER BY position LIMIT {mark}"
    )
    loads = json.loads
    try:
        cursor = raw.cursor()
        started = time.perf_counter()
        cpu = time.process_time()
        last = 0
        while True:
            cursor.execute(sql, (last, BATCH))
            got = cursor.fetchall()
            if not got:
                break
            payloads = [p if isinstance(p, dict) else loads(p) for *_r, p, _k in got]
            assert len(payloads) == len(got)
            last = got[-1][0]
        raw.commit()
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu
        cursor.close()
    finally:
        raw.close()
    return elapsed, cpu


def project_all(db: Database) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), time.process_time()
    applied = catch_up(db, RULES, grace_seconds=600, batch_size=BATCH)[0]
    return applied, time.perf_counter() - started, time.process_time() - cpu


#: Incremental steps timed per log: one 1,000-event batch takes tens of milliseconds, which
#: a shared machine's scheduling alone moves by 2x; the median of several is the figure.
INCREMENTS = 5


def incremental(db: Database, next_message: int) -> tuple[float, float]:
    """Median seconds, and median CPU seconds of this process, to project 1,000 new events
    (``INCREMENTS`` times, new messages each)."""
    times, cpus = [], []
    for step in range(INCREMENTS):
        next_message = fill(db, next_message, 1_000, seed=99 + step)
        started, cpu = time.perf_counter(), time.process_time()
        catch_up(db, RULES, grace_seconds=600, batch_size=BATCH)
        times.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    return statistics.median(times), statistics.median(cpus)


@contextmanager
def statement_times(db: Database, label: str, top: int = 8) -> Iterator[None]:
    """Print the seconds spent in each statement sent through SQLAlchemy meanwhile (the
    ``--by-statement`` figures): which query a slow catch-up waits on. The projector's
    event reads and row upserts go through the driver's cursor and are not in it."""
    from sqlalchemy import event

    spent: dict[str, list[float]] = {}

    def before(conn: Any, _cursor: Any, _sql: str, *_args: Any) -> None:
        conn.info["bench_started"] = time.perf_counter()

    def after(conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        entry = spent.setdefault(" ".join(sql.split())[:90], [0, 0.0])
        entry[0] += 1
        entry[1] += time.perf_counter() - conn.info.pop("bench_started")

    event.listen(db.engine, "before_cursor_execute", before)
    event.listen(db.engine, "after_cursor_execute", after)
    try:
        yield
    finally:
        event.remove(db.engine, "before_cursor_execute", before)
        event.remove(db.engine, "after_cursor_execute", after)
    for sql, (count, seconds) in sorted(spent.items(), key=lambda kv: -kv[1][1])[:top]:
        print(f"{label}: {seconds:7.2f}s in {count:5d} x {sql}")


def run(url: str, label: str, events: int, by_statement: bool = False) -> None:
    db = Database.from_url(url)
    schema.upgrade(db.engine)
    small = Database.from_url(url.replace("bench_big", "bench_small"))
    try:
        next_message = fill(db, 0, events, seed=1)
        scan, scan_cpu = raw_scan(db)
        with statement_times(db, label) if by_statement else nullcontext():
            applied, elapsed, cpu = project_all(db)
        big_cost = incremental(db, next_message)
        schema.upgrade(small.engine)
        small_next = fill(small, 0, 10_000, seed=2)
        project_all(small)
        small_cost = incremental(small, small_next)
    finally:
        db.dispose()
        small.dispose()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"{label}: {applied} events projected in {elapsed:.1f}s = {applied / elapsed:,.0f} ev/s; "
        f"raw scan {scan:.2f}s = {applied / scan:,.0f} ev/s; "
        f"ratio {scan / elapsed:.2f} (goal >= 0.3)"
    )
    print(
        f"{label}: CPU of this process: catch-up {cpu:.1f}s, raw scan {scan_cpu:.2f}s, "
        f"ratio {scan_cpu / cpu:.2f}"
    )
    print(
        f"{label}: 1,000 new events on the {applied}-event log {big_cost[0] * 1000:.0f} ms, "
        f"on a 10,000-event log {small_cost[0] * 1000:.0f} ms; "
        f"cost ratio {big_cost[0] / small_cost[0]:.2f} (goal <= 1.5); in CPU of this process "
        f"{big_cost[1] * 1000:.0f} / {small_cost[1] * 1000:.0f} ms = "
        f"{big_cost[1] / small_cost[1]:.2f}"
    )
    print(f"{label}: peak RSS so far {rss:.0f} MB (goal < 300)")


@contextmanager
def fresh_postgres(admin: str | None, *names: str) -> Iterator[str]:
    """The base URL of a PostgreSQL server (``admin``'s, else a throwaway one started from
    the installed binaries and stopped afterwards) holding the databases ``names``, made
    afresh."""
    from sqlalchemy import create_engine, text

    server = None
    if admin is None:
        from tests.pg_server import start_throwaway

        server = start_throwaway()
        admin = server.url
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            for name in names:
                conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
                conn.execute(text(f"CREATE DATABASE {name}"))
        engine.dispose()
        yield admin.rsplit("/", 1)[0]
    finally:
        if server is not None:
            server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument(
        "--by-statement",
        action="store_true",
        help="also print where the catch-up's SQLAlchemy statements spent their time",
    )
    args = parser.parse_args()
    if args.backend in ("sqlite", "both"):
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench_big.db", "SQLite", args.events, args.by_statement)
    if args.backend in ("postgresql", "both"):
        with fresh_postgres(args.postgres_url, "bench_big", "bench_small") as base:
            run(f"{base}/bench_big", "PostgreSQL", args.events, args.by_statement)


if __name__ == "__main__":
    main()
