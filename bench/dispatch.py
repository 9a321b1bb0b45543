"""Dispatcher throughput beside a bare aiohttp client, against one sandbox.

    python bench/dispatch.py [--messages N] [--rounds N] [--warmup N] [--latency-ms 20]
                             [--batch 100] [--concurrency 4]
                             [--backend sqlite|postgresql|both] [--postgres-url URL]

One sandbox (``smsrecon sandbox --latency-ms 20``) runs in its own process and serves both
clients, so neither shares a CPU thread or an event loop with it. The bare client posts the
same status objects in the same batch size with the same number of connections (one pooled
session, ``TCPConnector(limit=concurrency)``) and does nothing else. The dispatcher does its
whole job: claims the messages under a lease from ``message_state``, builds the payloads,
posts, and records every acknowledgement (``deliveries`` row, ``dispatch.acknowledged``
event) in the database; its time runs until the last result is committed.

Fairness: a warm-up of both clients first (imports, connections, statement caches), then
rounds alternating bare, dispatcher, bare, dispatcher …, each dispatcher round on a fresh
database (SQLite file; PostgreSQL database on a throwaway server started from the installed
binaries, or on --postgres-url, an admin URL that may CREATE DATABASE). After every round
the sandbox's record is checked: every status arrived exactly once, nothing else did, and
for the dispatcher every message is acknowledged in ``deliveries`` with one event each. The
ratio reported is the median of the rounds' ratios, with their range. Goal: ratio ≥ 0.7.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from sqlalchemy import func, select

from pipeline.config import Settings
from pipeline.db import schema
from pipeline.db.engine import Database, make_engine
from pipeline.db.tables import events
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.payload import StatusPayload, encode_body
from pipeline.dispatch.tables import deliveries
from pipeline.dispatch.transport import request_headers
from pipeline.projector.tables import message_state

TOKEN = "bench-partner-token"
TOKEN_ENV = "SMSRECON_BENCH_PARTNER_TOKEN"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def start_sandbox(latency_ms: int) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pipeline",
            "sandbox",
            "--port",
            "0",
            "--token",
            TOKEN,
            "--latency-ms",
            str(latency_ms),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.kill()
        raise SystemExit(f"the sandbox did not start: {line!r}")
    return proc, line.split("listening on ", 1)[1].split()[0]


def payloads(n: int, tag: str) -> list[StatusPayload]:
    return [StatusPayload(f"{tag}{i:07d}", 1, Decimal("4.50"), "RUB", 1) for i in range(n)]


async def sandbox_call(url: str, method: str, path: str) -> dict:  # type: ignore[type-arg]
    async with aiohttp.ClientSession() as session, session.request(method, url + path) as r:
        return await r.json() if method == "GET" else {}


async def check_received(url: str, items: list[StatusPayload], who: str) -> None:
    """Every status arrived exactly once and nothing else did (then the record is cleared)."""
    seen = await sandbox_call(url, "GET", "/_sandbox/received")
    counts = Counter(i["id"] for i in seen["items"])
    expected = {p.id for p in items}
    twice = [i for i, n in counts.items() if n > 1]
    missing = expected - counts.keys()
    extra = counts.keys() - expected
    if twice or missing or extra:
        raise SystemExit(
            f"{who}: {len(twice)} statuses arrived more than once, {len(missing)} never, "
            f"{len(extra)} not ours"
        )
    await sandbox_call(url, "POST", "/_sandbox/reset")


async def bare_client(url: str, items: list[StatusPayload], batch: int, concurrency: int) -> float:
    """Statuses per second of a client that only posts."""
    target = f"{url}/smsprovider/status/callback/{TOKEN}"
    bodies = [encode_body(items[i : i + batch]) for i in range(0, len(items), batch)]
    gate = asyncio.Semaphore(concurrency)
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def post(body: bytes) -> None:
            async with gate, session.post(target, data=body, headers=request_headers(TOKEN)) as r:
                await r.read()
                assert r.status == 200, r.status

        started = time.perf_counter()
        await asyncio.gather(*(post(body) for body in bodies))
        rate = len(items) / (time.perf_counter() - started)
    await check_received(url, items, "bare client")
    return rate


def seed_states(db: Database, items: list[StatusPayload]) -> None:
    rows = [
        {
            "message_id": p.id,
            "partner": "default",
            "free": False,
            "status": p.status,
            "is_final": True,
            "payment_sum": p.payment_sum,
            "currency_iso": p.currency_iso,
            "parts_amount": p.parts_amount,
            "last_position": 1,
            "version": 1,
            "payload_hash": hashlib.sha256(p.to_json().encode()).hexdigest(),
            "updated_at": T0,
            "fold_state": {},
        }
        for p in items
    ]
    with db.write() as conn:
        for start in range(0, len(rows), 5000):
            conn.execute(message_state.insert(), rows[start : start + 5000])


def check_recorded(db: Database, n: int) -> None:
    """Every message acknowledged in ``deliveries``, one ``dispatch.acknowledged`` each."""
    with db.read() as conn:
        acked = conn.scalar(
            select(func.count()).select_from(deliveries).where(deliveries.c.state == "acknowledged")
        )
        logged = conn.scalar(
            select(func.count()).select_from(events).where(events.c.type == "dispatch.acknowledged")
        )
    if (acked, logged) != (n, n):
        raise SystemExit(f"dispatcher: {acked} deliveries acknowledged, {logged} events, not {n}")


async def dispatcher_client(
    db: Database, url: str, items: list[StatusPayload], batch: int, concurrency: int
) -> float:
    settings = Settings.model_validate(
        {
            "dispatcher": {
                "batch_size": batch,
                "concurrency": concurrency,
                "per_host_concurrency": concurrency,
            },
            "altegio": {
                "base_url": url,
                "insecure_hosts": ["127.0.0.1"],
                "partners": {"default": {"token_env": TOKEN_ENV}},
            },
        }
    )
    started = time.perf_counter()
    summary = await Dispatcher(db, settings).run(until_idle=True)
    rate = len(items) / (time.perf_counter() - started)
    if summary.acknowledged != len(items):
        raise SystemExit(f"dispatcher: {summary.acknowledged} of {len(items)} acknowledged")
    await check_received(url, items, "dispatcher")
    check_recorded(db, len(items))
    return rate


def sqlite_databases(folder: Path) -> Callable[[str], str]:
    def fresh(name: str) -> str:
        url = f"sqlite:///{folder / name}.db"
        engine = make_engine(url)
        schema.upgrade(engine)
        engine.dispose()
        return url

    return fresh


def postgres_databases(admin_url: str) -> Callable[[str], str]:
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    def fresh(name: str) -> str:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f"DROP DATABASE IF EXISTS bench_dispatch_{name} WITH (FORCE)"))
            conn.execute(text(f"CREATE DATABASE bench_dispatch_{name}"))
        admin.dispose()
        url = make_url(admin_url).set(database=f"bench_dispatch_{name}")
        engine = make_engine(url.render_as_string(hide_password=False))
        schema.upgrade(engine)
        engine.dispose()
        return url.render_as_string(hide_password=False)

    return fresh


def measure(
    backend: str, fresh: Callable[[str], str], url: str, args: argparse.Namespace
) -> list[tuple[float, float]]:
    """Warm-up, then ``rounds`` of (bare, dispatcher) in alternation."""

    def dispatcher_round(name: str, n: int) -> float:
        db = Database.from_url(fresh(name))
        try:
            items = payloads(n, f"{name}-")
            seed_states(db, items)
            return asyncio.run(dispatcher_client(db, url, items, args.batch, args.concurrency))
        finally:
            db.dispose()

    def bare_round(name: str, n: int) -> float:
        items = payloads(n, f"{name}-")
        return asyncio.run(bare_client(url, items, args.batch, args.concurrency))

    asyncio.run(sandbox_call(url, "POST", "/_sandbox/reset"))
    bare_round("warmb", args.warmup)
    dispatcher_round("warmd", args.warmup)
    rounds = []
    for r in range(args.rounds):
        bare = bare_round(f"b{r}", args.messages)
        ours = dispatcher_round(f"d{r}", args.messages)
        rounds.append((bare, ours))
        print(
            f"  {backend} round {r + 1}: bare {bare:,.0f}/s, dispatcher {ours:,.0f}/s, "
            f"ratio {ours / bare:.2f}",
            flush=True,
        )
    return rounds


def report(backend: str, rounds: list[tuple[float, float]]) -> None:
    bare = [b for b, _ in rounds]
    ours = [o for _, o in rounds]
    ratios = [o / b for b, o in rounds]
    print(
        f"{backend}: bare aiohttp client {statistics.median(bare):,.0f} statuses/s "
        f"({min(bare):,.0f}–{max(bare):,.0f}), dispatcher {statistics.median(ours):,.0f} "
        f"statuses/s ({min(ours):,.0f}–{max(ours):,.0f}), ratio median "
        f"{statistics.median(ratios):.2f} ({min(ratios):.2f}–{max(ratios):.2f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    os.environ[TOKEN_ENV] = TOKEN
    print(
        f"{args.messages:,} statuses per round, {args.rounds} rounds, batch {args.batch}, "
        f"concurrency {args.concurrency}, sandbox latency {args.latency_ms} ms",
        flush=True,
    )
    proc, url = start_sandbox(args.latency_ms)
    results: dict[str, list[tuple[float, float]]] = {}
    try:
        if args.backend in ("sqlite", "both"):
            with tempfile.TemporaryDirectory() as tmp:
                results["sqlite"] = measure("sqlite", sqlite_databases(Path(tmp)), url, args)
        if args.backend in ("postgresql", "both"):
            server = None
            admin_url = args.postgres_url
            if admin_url is None:
                from tests.pg_server import start_throwaway

                server = start_throwaway()
                admin_url = server.url
            try:
                results["postgresql"] = measure(
                    "postgresql", postgres_databases(admin_url), url, args
                )
            finally:
                if server is not None:
                    server.stop()
    finally:
        proc.terminate()
        proc.wait(10)
    for backend, rounds in results.items():
        report(backend, rounds)


if __name__ == "__main__":
    main()
