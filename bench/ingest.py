"""Ingest throughput: N concurrent clients posting Kannel DLRs to ``smsrecon serve``.

The same clients, payloads and concurrency also hit a bare aiohttp handler that answers
200 at once. Each server is a process of its own, apart from the client's, so the ratio
shows what authentication, parsing, group commit (committed before the 200) and metrics
cost over HTTP alone. Both servers run side by side for the whole bench and are warmed up
first; rounds then alternate them (A B, B A, A B, ...) so that drifting load on a shared
machine falls on both, and the median of the per-round ratios is reported with its range.
Every DLR is distinct; afterwards the log must hold exactly one event per request sent to
``smsrecon serve`` (checked). Goal on SQLite: ratio >= 0.5.

Each server's CPU time (user + system, all its threads, from /proc) over the measured rounds
is also reported per request, for ``smsrecon serve`` split into its event loop's thread and
its other threads (the group commit's), and the bare handler's over ``smsrecon serve``'s:
on a loaded shared machine, where the client's own share of the CPU can bound both rates,
that ratio of costs says what the rate ratio would be if the server alone were the
bottleneck.

    .venv/bin/python bench/ingest.py [--clients 50] [--requests 3000] [--rounds 7]
                                     [--warmup 1000] [--database-url URL] [--pin]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

import aiohttp
from yarl import URL

ROOT = Path(__file__).resolve().parent.parent
CONFIG = """
ingest:
  commit_interval_ms: {interval}
  commit_max_events: {max_events}
logging:
  level: WARNING
carriers:
  bench:
    format: kannel
    timezone: Europe/Moscow
"""
BARE = """
import asyncio
from aiohttp import web

async def ok(request):
    await request.read()
    return web.Response(text="OK")

async def main():
    app = web.Application()
    app.router.add_route("*", "/v1/dlr/{carrier}", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    print(f"listening on http://{host}:{port}", flush=True)
    await asyncio.Event().wait()

asyncio.run(main())
"""


def query(i: int) -> dict[str, str]:
    """A distinct phone-level Kannel DLR (type 1 with its SMPP receipt)."""
    carrier_id = f"{i:08x}"
    receipt = (
        f"id:{carrier_id} sub:001 dlvrd:001 submit date:2401151030 done date:2401151031 "
        "stat:DELIVRD err:000 text:"
    )
    return {
        "message_id": str(i),
        "type": "1",
        "answer": receipt,
        "smsc": "smpp_bench",
        "smsc_id": carrier_id,
        "ts": "1705314662",
        "to": "+79161234567",
        "from": "Bench",
    }


def urls(base: str, first: int, count: int) -> list[URL]:
    """The request URLs, encoded before the clock starts (the same work for both servers)."""
    return [
        URL(f"{base}/v1/dlr/bench?{urlencode(query(i))}", encoded=True)
        for i in range(first, first + count)
    ]


async def drive(targets: list[URL], clients: int) -> float:
    """Requests per second for ``targets`` over ``clients`` concurrent keep-alive connections.

    Every answer must be 200: a rate of failed requests would measure nothing.
    """
    pending = iter(targets)
    failures: list[int] = []

    async def client(session: aiohttp.ClientSession) -> None:
        for url in pending:
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    failures.append(response.status)

    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        # Open the connections outside the measurement.
        await asyncio.gather(*(_ping(session, targets[0]) for _ in range(clients)))
        started = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(clients)))
        elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"{len(failures)} requests failed, e.g. HTTP {failures[0]}")
    return len(targets) / elapsed


async def _ping(session: aiohttp.ClientSession, url: URL) -> None:
    # Same URL every time: after the first, the server answers it as a duplicate.
    async with session.get(url) as response:
        await response.read()


def cpu_seconds(pid: int, task: int | None = None) -> float:
    """User + system CPU time so far (Linux /proc): of process ``pid`` and all its threads,
    or of its thread ``task`` alone (the main thread's id is the process id)."""
    path = f"/proc/{pid}/stat" if task is None else f"/proc/{pid}/task/{task}/stat"
    fields = Path(path).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(
    command: list[str], env: dict[str, str], cpu: int | None
) -> tuple[subprocess.Popen[str], str]:
    preexec: Callable[[], None] | None = None
    if cpu is not None:
        preexec = lambda: os.sched_setaffinity(0, {cpu})  # noqa: E731
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, text=True, env=env, cwd=ROOT, preexec_fn=preexec
    )
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.match(r"listening on (http://\S+)", line)
    if not match:
        process.kill()
        raise SystemExit(f"server did not start: {line!r}")
    return process, match.group(1)


def stop(process: subprocess.Popen[str]) -> None:
    process.terminate()
    process.wait(timeout=60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=3000, help="per server per round")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--warmup", type=int, default=1000, help="requests per server, unmeasured")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--commit-interval-ms", type=int, default=0)
    parser.add_argument("--commit-max-events", type=int, default=500)
    parser.add_argument(
        "--pin",
        action="store_true",
        help="run the client on CPU 0 and both servers on CPU 1 (needs 2 CPUs)",
    )
    args = parser.parse_args()

    sys.path.insert(0, str(ROOT))
    from sqlalchemy import func, select

    from pipeline.db import schema
    from pipeline.db.engine import Database
    from pipeline.db.tables import events

    client_cpu = server_cpu = None
    if args.pin:
        cpus = sorted(os.sched_getaffinity(0))
        if len(cpus) < 2:
            raise SystemExit("--pin needs at least 2 CPUs")
        client_cpu, server_cpu = cpus[0], cpus[1]
        os.sched_setaffinity(0, {client_cpu})

    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        db = Database.from_url(url)
        schema.upgrade(db.engine)
        with db.read() as conn:
            before = conn.scalar(select(func.count()).select_from(events)) or 0
        config = Path(tmp) / "config.yaml"
        config.write_text(
            CONFIG.format(interval=args.commit_interval_ms, max_events=args.commit_max_events)
        )
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        serve_cmd = [sys.executable, "-m", "pipeline", "--config", str(config)]
        serve_cmd += ["--database-url", url, "serve", "--host", "127.0.0.1", "--port", "0"]
        server, served_base = start(serve_cmd, env, server_cpu)
        bare, bare_base = start([sys.executable, "-c", BARE], env, server_cpu)
        served_rates: list[float] = []
        bare_rates: list[float] = []
        sent = 0
        served_cpu = bare_cpu = served_loop_cpu = 0.0
        try:
            # Warm-up: imports, connection pools, the database file, CPU caches.
            asyncio.run(drive(urls(served_base, 0, args.warmup), args.clients))
            asyncio.run(drive(urls(bare_base, 0, args.warmup), args.clients))
            sent = args.warmup
            served_cpu, bare_cpu = -cpu_seconds(server.pid), -cpu_seconds(bare.pid)
            served_loop_cpu = -cpu_seconds(server.pid, server.pid)
            for round_number in range(args.rounds):
                served_urls = urls(served_base, sent, args.requests)
                bare_urls = urls(bare_base, sent, args.requests)
                sent += args.requests
                # A B, then B A: neither server always runs first (or last) in a round.
                if round_number % 2 == 0:
                    served_rates.append(asyncio.run(drive(served_urls, args.clients)))
                    bare_rates.append(asyncio.run(drive(bare_urls, args.clients)))
                else:
                    bare_rates.append(asyncio.run(drive(bare_urls, args.clients)))
                    served_rates.append(asyncio.run(drive(served_urls, args.clients)))
            served_cpu += cpu_seconds(server.pid)
            served_loop_cpu += cpu_seconds(server.pid, server.pid)
            bare_cpu += cpu_seconds(bare.pid)
        finally:
            stop(bare)
            stop(server)
        with db.read() as conn:
            stored = (conn.scalar(select(func.count()).select_from(events)) or 0) - before
        db.dispose()
        if stored != sent:
            raise SystemExit(f"sent {sent} distinct DLRs, the log holds {stored} new events")

    ratios = sorted(s / b for s, b in zip(served_rates, bare_rates, strict=True))
    backend = url.split(":", 1)[0].split("+", 1)[0]
    pinned = ", client on CPU 0 and servers on CPU 1" if args.pin else ""
    print(
        f"clients {args.clients}, {args.requests} requests per server per round, "
        f"{args.rounds} alternating rounds after {args.warmup} warm-up, backend {backend}{pinned}"
    )
    print(f"smsrecon serve: {_spread(served_rates)} (every DLR committed once: {stored} events)")
    print(f"bare aiohttp:   {_spread(bare_rates)}")
    measured = args.rounds * args.requests
    loop_us = served_loop_cpu / measured * 1e6
    print(
        f"CPU per request: smsrecon serve {served_cpu / measured * 1e6:.0f} µs "
        f"(event loop {loop_us:.0f}, other threads {served_cpu / measured * 1e6 - loop_us:.0f}), "
        f"bare aiohttp {bare_cpu / measured * 1e6:.0f} µs, "
        f"bare/serve {bare_cpu / served_cpu:.2f}"
    )
    print(
        f"ratio:          median {statistics.median(ratios):.2f} "
        f"(rounds {', '.join(f'{r:.2f}' for r in ratios)})"
    )


def _spread(rates: list[float]) -> str:
    return (
        f"median {statistics.median(rates):,.0f} req/s (range {min(rates):,.0f}-{max(rates):,.0f})"
    )


if __name__ == "__main__":
    main()
