"""Dispatcher throughput beside a bare aiohttp client, against one sandbox.

    python bench/dispatch.py [--messages N] [--latency-ms 20] [--batch 100] [--concurrency 4]
                             [--database-url URL]

A sandbox (``smsrecon sandbox --latency-ms 20``) runs in its own process. The bare client
posts the same status objects in the same batch size with the same number of connections
(one pooled session, ``TCPConnector(limit=concurrency)``) and does nothing else. The
dispatcher does its whole job: claims the messages under a lease from ``message_state``,
builds the payloads, posts, and records every acknowledgement (``deliveries`` row,
``dispatch.acknowledged`` event) in the database. Both print statuses per second; the goal
is ratio ≥ 0.7. The database is a fresh SQLite file unless --database-url names another
(an empty, migrated PostgreSQL database for instance).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp

from pipeline.config import Settings
from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.payload import StatusPayload, encode_body
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
        return len(items) / (time.perf_counter() - started)


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


async def dispatcher_rate(
    db: Database, url: str, batch: int, concurrency: int
) -> tuple[float, int]:
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
    elapsed = time.perf_counter() - started
    return summary.acknowledged / elapsed, summary.acknowledged


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--latency-ms", type=int, default=20)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    os.environ[TOKEN_ENV] = TOKEN

    proc, url = start_sandbox(args.latency_ms)
    try:
        with tempfile.TemporaryDirectory() as tmp:
            db_url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
            db = Database.from_url(db_url)
            schema.upgrade(db.engine)
            seed_states(db, payloads(args.messages, "d"))
            bare = asyncio.run(
                bare_client(url, payloads(args.messages, "b"), args.batch, args.concurrency)
            )
            ours, acknowledged = asyncio.run(dispatcher_rate(db, url, args.batch, args.concurrency))
            db.dispose()
    finally:
        proc.terminate()
        proc.wait(10)
    if acknowledged != args.messages:
        raise SystemExit(f"only {acknowledged} of {args.messages} statuses were acknowledged")
    backend = (args.database_url or "sqlite").split(":")[0]
    print(
        f"{args.messages} statuses, batch {args.batch}, concurrency {args.concurrency}, "
        f"sandbox latency {args.latency_ms} ms, {backend}"
    )
    print(f"bare aiohttp client: {bare:,.0f} statuses/s")
    print(f"dispatcher:          {ours:,.0f} statuses/s")
    print(f"ratio:               {ours / bare:.2f}")


if __name__ == "__main__":
    main()
