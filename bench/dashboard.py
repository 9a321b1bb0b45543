"""Dashboard pages over a month of 1,000,000 messages on PostgreSQL, rendered over HTTP.

    python bench/dashboard.py [--messages 1000000] [--before 50000] [--runs 3]
                              [--pg-admin-url URL] [--keep] [--skip-seed] [--jit]

Seeds the month with ``bench/report_month.py`` (the projection tables written directly,
as the reports bench does) into a scratch database ``dashboard_bench_scratch``, serves the
dashboard in this process on 127.0.0.1 with the page cache off (``dashboard.cache_seconds:
0``, every render reads the views), and times each page from request to the last byte,
``--runs`` times. Then once more with the cache on, a second render of each page while the
projection has not moved. Prints medians, in seconds, and a full scan of the table as a
baseline (the machine's load varies: read the pages against it). ``--jit`` repeats the
cold renders with PostgreSQL's JIT on (the server default; the dashboard turns it off).

The overview and margin pages read the daily rollup (``dashboard_daily``): the bench times
its whole build (what the first refresh after the migration does, once), an incremental
refresh after one day's messages changed (``last_position`` raised on every message of
2026-01-15, as the projector raises it), and the overview page rendered right after such a
change (the refresh inside the page's time).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import aiohttp
from aiohttp import web
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.report_month import REPORTING_CURRENCY, Month, seed
from pipeline.config import Settings
from pipeline.dashboard import rollup
from pipeline.dashboard.app import DASHBOARD, PREFIX, dashboard_app
from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.serving import running_app

PG_NAME = "dashboard_bench_scratch"
QUERY = "period=month&date=2026-01-15"
PAGES = {
    "overview": f"/dashboard/?{QUERY}",
    "margin": f"/dashboard/margin?{QUERY}",
    "disputes": f"/dashboard/disputes?{QUERY}",
    "invoices": f"/dashboard/invoices?{QUERY}",
    "downloads": f"/dashboard/downloads?{QUERY}",
    "overview, one partner": f"/dashboard/?{QUERY}&partner=salon-003",
}


async def render(http: aiohttp.ClientSession, url: str) -> tuple[float, int]:
    started = time.perf_counter()
    async with http.get(url) as response:
        body = await response.read()
        assert response.status == 200, (url, response.status, body[:300])
    return time.perf_counter() - started, len(body)


def baseline(db: Database, runs: int) -> None:
    """A full scan of the month (what every daily view does first), to read the page times
    against on a machine whose load varies: the same scan, in the same run."""
    walls = []
    for _ in range(runs):
        started = time.perf_counter()
        with db.read() as conn:
            conn.execute(text("SELECT count(*), sum(parts_amount) FROM message_state")).one()
        walls.append(time.perf_counter() - started)
    each = ", ".join(f"{w:.3f}" for w in walls)
    print(f"| scan of message_state (baseline) | | {statistics.median(walls):.3f} ({each}) | |")


def touch_a_day(db: Database) -> int:
    """Raise ``last_position`` on every message of one day, as new events for each would."""
    with db.write() as conn:
        head = conn.execute(text("SELECT max(last_position) FROM message_state")).scalar() or 0
        touched = conn.execute(
            text(
                "UPDATE message_state SET last_position = :head + 1 "
                "WHERE accepted_at >= '2026-01-15T00:00:00Z' "
                "AND accepted_at < '2026-01-16T00:00:00Z'"
            ),
            {"head": head},
        ).rowcount
    return int(touched)


def measure_rollup(db: Database, runs: int) -> None:
    """The rollup's whole build (once, after the migration) and an incremental refresh of
    one changed day."""
    started = time.perf_counter()
    with db.write() as conn:
        done = rollup.refresh(conn, full=True)
        rows = conn.execute(text("SELECT count(*) FROM dashboard_daily")).scalar()
    wall = time.perf_counter() - started
    print(f"| rollup: whole build ({done.days} days, {rows:,} rows) | | {wall:.3f} | |")
    walls, touched = [], 0
    for _ in range(runs):
        touched = touch_a_day(db)
        started = time.perf_counter()
        with db.write() as conn:
            done = rollup.refresh(conn)
        walls.append(time.perf_counter() - started)
        assert done.days == 1 and not done.full, done
    each = ", ".join(f"{w:.3f}" for w in walls)
    print(
        f"| rollup: refresh after one day changed ({touched:,} messages) | | "
        f"{statistics.median(walls):.3f} ({each}) | |"
    )


async def measure(db: Database, url: str, runs: int, *, jit: bool = False) -> None:
    for cache in (0.0, 600.0):
        settings = Settings.model_validate(
            {"database": {"url": url}, "finance": {"reporting_currency": REPORTING_CURRENCY},
             "dashboard": {"cache_seconds": cache}}
        )  # fmt: skip
        board = dashboard_app(settings, db)
        # jit: the PostgreSQL default, to compare with the dashboard's JIT-off reads.
        board[DASHBOARD].interactive = not jit
        app = web.Application()
        app.add_subapp(PREFIX, board)
        async with (
            running_app(app) as base,
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600)) as http,
        ):
            for name, path in PAGES.items():
                walls, size = [], 0
                for _ in range(1 if cache else runs):
                    wall, size = await render(http, base + path)
                    walls.append(wall)
                if cache:  # the first render filled the cache; time the next ones
                    walls = [(await render(http, base + path))[0] for _ in range(runs)]
                label = ("cached" if cache else "cold") + (", JIT on" if jit else "")
                each = ", ".join(f"{w:.3f}" for w in walls)
                median = statistics.median(walls)
                print(f"| {name} | {label} | {median:.3f} ({each}) | {size:,} |", flush=True)
            if not cache and not jit:
                walls = []
                for _ in range(runs):
                    touched = await asyncio.to_thread(touch_a_day, db)
                    walls.append((await render(http, base + PAGES["overview"]))[0])
                each = ", ".join(f"{w:.3f}" for w in walls)
                print(
                    f"| overview right after {touched:,} messages of a day changed | cold | "
                    f"{statistics.median(walls):.3f} ({each}) | |",
                    flush=True,
                )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--before", type=int, default=50_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--pg-admin-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    parser.add_argument("--skip-seed", action="store_true", help="reuse a kept database")
    parser.add_argument("--jit", action="store_true", help="also with PostgreSQL's JIT on")
    args = parser.parse_args()
    admin = create_engine(args.pg_admin_url, isolation_level="AUTOCOMMIT")
    url = args.pg_admin_url.rsplit("/", 1)[0] + f"/{PG_NAME}"
    if not args.skip_seed:
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME}"))
            conn.execute(text(f"CREATE DATABASE {PG_NAME}"))
    db = Database.from_url(url)
    try:
        if not args.skip_seed:
            schema.upgrade(db.engine)
            started = time.perf_counter()
            month = Month(datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC),
                          args.messages)  # fmt: skip
            seed(db, month, before=args.before)
            with db.write() as conn:
                conn.exec_driver_sql("ANALYZE")
            print(f"seeded {args.messages:,} messages in {time.perf_counter() - started:.0f} s")
        schema.upgrade(db.engine)  # a kept database may predate the rollup's migration
        print("| page | cache | median s (runs) | bytes |\n|---|---|---|---|")
        baseline(db, args.runs)
        measure_rollup(db, args.runs)
        asyncio.run(measure(db, url, args.runs))
        baseline(db, args.runs)
        if args.jit:
            asyncio.run(measure(db, url, args.runs, jit=True))
            baseline(db, args.runs)
    finally:
        db.dispose()
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)"))
        admin.dispose()


if __name__ == "__main__":
    main()
