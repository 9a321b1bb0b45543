"""Soak: ``smsrecon run`` for a fixed time at a steady DLR rate, with faults and one restart.

    .venv/bin/python bench/soak.py [--minutes 10 | --seconds S] [--rate 50]
                                   [--database-url URL] [--sample-every 5] [--csv FILE]
                                   [--json FILE] [--faults SPEC] [--warmup 60]
                                   [--rss-tolerance 0.10] [--fd-tolerance 4]
                                   [--max-lag-seconds 60] [--max-tail-seconds 30]
                                   [--settle-timeout 300]
                                   [--project-interval 5s] [--dispatch-interval 2s]

``run`` is a real subprocess on a fresh SQLite file (or ``--database-url``, an empty
database it migrates), talking to ``smsrecon sandbox`` (another process) with faults on
(5xx, 429, hangs past the dispatcher's timeout, connection resets). Traffic
(bench/soak_traffic.py): messages and submissions through the send path, ``--rate`` DLRs
a second through a carrier route. Half-way, ``run`` gets SIGTERM, must exit 0 saying
"stopped cleanly", and is started again on the same port; the client resends whatever got
no 2xx meanwhile.

Every ``--sample-every`` seconds: VmRSS, open descriptors, threads and CPU of the ``run``
process (/proc), the log's last position, projector lag (events after the checkpoint and
the age of the oldest), the dispatch backlog (messages whose payload Altegio has not
acknowledged). Progress rows go to stderr; the report (a condensed table and the verdict)
to stdout.

After the traffic: ``run`` is left to settle (lag and backlog both 0, or
``--settle-timeout``), stopped, and the checks run: every 2xx the client got is an event
with its dedup key; every message's latest projection is acknowledged and is the last
status the sandbox recorded for it; every finished message ended as planned; both exits
were clean; the partner token is nowhere in run's log; the traffic kept pace (the last
message finished at most ``--max-tail-seconds`` later than nominal: else the machine could
not carry ``--rate`` and nothing was steady); RSS and descriptors flat and lag bounded
(bench/soak_verdict.py says how).
Exit 0 when nothing fails, 1 when a check fails, 2 when the soak could not be set up.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp
from sqlalchemy import func, select

from bench.soak_checks import Probe, check_delivered, check_stored, probe
from bench.soak_procs import (
    CLOCK_TICKS,
    ROOT,
    DatabaseTarget,
    RunProcess,
    Sandbox,
    free_port,
    pipeline_command,
    read_proc,
)
from bench.soak_traffic import ENROUTE_AFTER, FINAL_AFTER, Traffic
from bench.soak_verdict import CSV_FIELDS, LEGEND, Check, Sample, flat_checks, lag_check, table
from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.db.tables import events

TOKEN = "soak-partner-token-8d21f0"
TOKEN_ENV = "SMSRECON_SOAK_PARTNER_TOKEN"
DEFAULT_FAULTS = "500=0.04,502=0.02,503=0.02,429=0.03,hang=0.02,reset=0.02"
#: The dispatcher gives up on a request after this; a sandbox hang lasts longer.
DISPATCH_TIMEOUT_S = 5
HANG_MS = 8000


def write_config(
    path: Path, args: argparse.Namespace, database_url: str, sandbox_url: str, port: int
) -> None:
    config = {
        "database": {"url": database_url},
        "logging": {"level": "INFO"},
        "ingest": {"host": "127.0.0.1", "port": port},
        "carriers": {"soak": {"format": "generic", "auth": {"type": "none"}}},
        "billing": {"tariffs": [{"prefix": "+7", "price_per_part": "2.45", "currency": "RUB"}]},
        "scheduler": {
            "project_interval": args.project_interval,
            "dispatch_interval": args.dispatch_interval,
        },
        # A short timeout and backoff cap keep the drain after the traffic short with
        # faults on; everything else is the default.
        "dispatcher": {"timeout": f"{DISPATCH_TIMEOUT_S}s", "backoff_cap": "30s"},
        "altegio": {
            "base_url": sandbox_url,
            "allowed_hosts": [],
            "insecure_hosts": ["127.0.0.1"],
            "partners": {"default": {"token_env": TOKEN_ENV}},
        },
    }
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML


class Soak:
    """One soak: its processes, its samples, and the checks taken at the end.

    The driver reads the database through its own connection and /proc, never through
    ``run``: what it measures must not depend on the thing measured answering.
    """

    def __init__(self, args: argparse.Namespace, database_url: str, workdir: Path) -> None:
        self.args = args
        self.database_url = database_url
        self.db = Database.from_url(database_url)
        url = self.db.engine.url
        self.db_target = (
            DatabaseTarget(port=url.port or 5432)
            if self.db.is_postgres
            else DatabaseTarget(path=str(Path(url.database or "").resolve()))
        )
        self.samples: list[Sample] = []
        self.config = workdir / "config.yaml"
        self.port = free_port()
        self.crashed: str | None = None
        self.restarting = False
        self.settling = False
        self.settled_after: float | None = None
        self.t0 = time.monotonic()

    def prepare(self) -> None:
        schema.upgrade(self.db.engine)
        with self.db.read() as conn:
            if conn.scalar(select(func.count()).select_from(events)):
                raise SystemExit("the soak needs an empty event log (a fresh database)")

    async def run(self) -> list[Check]:
        args = self.args
        self.sandbox = Sandbox(TOKEN, args.faults, HANG_MS, args.seed)
        try:
            write_config(self.config, args, self.database_url, self.sandbox.url, self.port)
            env = {**os.environ, TOKEN_ENV: TOKEN, "PYTHONUNBUFFERED": "1"}
            self.run_process = RunProcess(self.config, self.database_url, self.port, env)
            await asyncio.to_thread(self.run_process.start)
            self.traffic = Traffic(f"http://127.0.0.1:{self.port}", args.rate)
            self.t0 = time.monotonic()
            _progress(table([])[0])
            sampling = asyncio.create_task(self._sample_forever())
            restart = asyncio.create_task(self._restart_at(args.duration / 2))
            await self.traffic.run(args.duration, args.settle_timeout)
            await restart
            await self._settle()
            sampling.cancel()
            if self.run_process.process is not None:
                await asyncio.to_thread(self.run_process.stop)
            drained = None if self.settled_after is not None else self._drain_once()
            received = await _sandbox_received(self.sandbox.url)
        finally:
            try:
                if getattr(self, "run_process", None) and self.run_process.process is not None:
                    self.run_process.stop()
            finally:
                self.sandbox.stop()
        return self._checks(received, drained)

    async def _restart_at(self, after: float) -> None:
        await asyncio.sleep(after)
        self.restarting = True
        _progress(f"--- t={self._t():.0f}s: SIGTERM to run (pid {self.run_process.pid})")
        stopped = await asyncio.to_thread(self.run_process.stop)
        _progress(
            f"--- t={self._t():.0f}s: run exited {stopped.returncode} "
            f"({'cleanly' if stopped.clean else 'NOT cleanly'}); starting it again"
        )
        started = await asyncio.to_thread(self.run_process.start)
        self.restarting = False
        _progress(f"--- t={self._t():.0f}s: run is back (pid {started.pid})")

    async def _settle(self) -> None:
        """Wait until every event is projected and every payload acknowledged."""
        self.settling = True
        _progress(f"--- t={self._t():.0f}s: traffic done; waiting for lag 0 and backlog 0")
        deadline = time.monotonic() + self.args.settle_timeout
        started = time.monotonic()
        while time.monotonic() < deadline and self.crashed is None:
            state = await asyncio.to_thread(probe, self.db)
            if state.lag_events == 0 and state.backlog == state.held == 0:
                self.settled_after = time.monotonic() - started
                _progress(f"--- settled after {self.settled_after:.0f}s")
                return
            await asyncio.sleep(1)
        _progress("--- did NOT settle in time")

    def _drain_once(self) -> str:
        """After an unsettled end: one ``project`` and ``dispatch --until-idle``, as cron
        would run them, so the checks show what a drain still leaves undelivered."""
        env = {**os.environ, TOKEN_ENV: TOKEN}
        lines = []
        for step in (["project"], ["dispatch", "--until-idle"]):
            command = pipeline_command(self.config, self.database_url, *step)
            done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
            lines.append(f"{' '.join(step)}: exit {done.returncode}")
        return "; ".join(lines)

    async def _sample_forever(self) -> None:
        last_pid, last_ticks, last_at = None, 0, time.monotonic()
        next_at = time.monotonic()
        while True:
            next_at += self.args.sample_every
            pid = self.run_process.pid
            proc = read_proc(pid, self.port, self.db_target) if pid is not None else None
            now = time.monotonic()
            cpu = None
            if proc is not None and pid == last_pid:
                cpu = 100 * (proc.cpu_ticks - last_ticks) / CLOCK_TICKS / (now - last_at)
            if proc is not None:
                last_pid, last_ticks, last_at = pid, proc.cpu_ticks, now
            self._notice_crash()
            state: Probe = await asyncio.to_thread(probe, self.db)
            lifetime = self.run_process.lifetimes[-1]
            stats = self.traffic.stats
            latencies, stats.latencies = sorted(stats.latencies), []
            phase = "restart" if self.restarting else "settle" if self.settling else "traffic"
            sample = Sample(
                t=self._t(),
                phase=phase,
                lifetime=lifetime.number,
                age=now - lifetime.ready,
                rss_kib=None if proc is None else proc.rss_kib,
                fds=None if proc is None else proc.fds,
                conns=None if proc is None else proc.ingest_connections,
                db_fds=None if proc is None else proc.database,
                threads=None if proc is None else proc.threads,
                cpu_pct=cpu,
                events=state.events,
                lag_events=state.lag_events,
                lag_seconds=state.lag_seconds,
                backlog=state.backlog,
                sent_2xx=stats.answered_2xx,
                p50_ms=_quantile(latencies, 0.5),
                max_ms=_quantile(latencies, 1.0),
                retries=sum(stats.retries.values()),
            )
            self.samples.append(sample)
            _progress(table([sample])[1])
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    def _notice_crash(self) -> None:
        process = self.run_process.process
        if self.restarting or self.crashed or process is None or process.poll() is None:
            return
        tail = " | ".join(line.strip() for line in self.run_process.stderr_lines()[-3:])
        self.crashed = f"run exited {process.returncode} on its own: {tail}"
        self.traffic.give_up.set()
        _progress(f"--- {self.crashed}")

    def _t(self) -> float:
        return time.monotonic() - self.t0

    def _checks(self, received: dict, drained: str | None) -> list[Check]:  # type: ignore[type-arg]
        args, stats = self.args, self.traffic.stats
        checks: list[Check] = []
        lifetimes = self.run_process.lifetimes
        checks.append(
            Check(
                "clean restarts",
                self.crashed is None and all(lt.clean for lt in lifetimes) and len(lifetimes) == 2,
                self.crashed
                or ", ".join(
                    f"run #{lt.number} exit {lt.returncode}"
                    + ("" if lt.clean else f" ({' | '.join(lt.stderr_tail)})")
                    for lt in lifetimes
                )
                + f"; down {self._downtime():.1f}s for the restart",
            )
        )
        logs = self.run_process.earlier_stderr
        errors = [line.strip() for line in logs if " ERROR " in line or "Traceback" in line]
        checks.append(
            Check(
                "logs",
                not any(TOKEN in line for line in logs),
                f"{len(logs)} log lines from run, the partner token in none"
                if not any(TOKEN in line for line in logs)
                else "the partner token appears in run's log",
            )
        )
        if errors:
            checks[-1] = Check(
                "logs",
                checks[-1].ok,
                checks[-1].detail + f"; {len(errors)} ERROR lines, e.g. {errors[0][:200]!r}",
            )
        stored = check_stored(self.db, stats.stored_keys)
        checks.append(
            Check(
                "every 2xx stored",
                not stored.missing and not stats.refused,
                f"{stats.answered_2xx} answers 2xx for {stored.answered} distinct events, "
                f"{len(stored.missing)} missing from the log"
                + (f" (e.g. {stored.missing[:3]})" if stored.missing else "")
                + f"; {len(stats.refused)} refused (4xx)"
                + (f" (e.g. {stats.refused[:3]})" if stats.refused else ""),
            )
        )
        delivered = check_delivered(self.db, received, stats.finished_messages)
        bad = (
            delivered.unacked
            or delivered.differs
            or delivered.never_received
            or delivered.strangers
        )
        checks.append(
            Check(
                "every change delivered",
                not bad and not delivered.wrong_final and self.settled_after is not None,
                f"{delivered.projected} messages projected, {len(delivered.unacked)} not "
                f"acknowledged, {len(delivered.never_received)} never at the sandbox, "
                f"{len(delivered.differs)} whose last status there differs, "
                f"{len(delivered.strangers)} there that were never projected, "
                f"{len(delivered.wrong_final)} of {len(stats.finished_messages)} finished "
                f"not at their planned end; "
                + (
                    f"settled {self.settled_after:.0f}s after the traffic"
                    if self.settled_after is not None
                    else f"NOT settled in {args.settle_timeout:g}s ({drained})"
                ),
            )
        )
        nominal = ENROUTE_AFTER + FINAL_AFTER
        # A restart still under way when the last message started (a short soak) delays
        # the tail by its own length: that is the restart, not the pace.
        waited = 0.0
        if len(lifetimes) > 1:
            waited = max(0.0, lifetimes[1].ready - stats.last_started)
        checks.append(
            Check(
                "kept pace",
                stats.tail_seconds - waited <= nominal + args.max_tail_seconds,
                f"the last message finished {stats.tail_seconds:.1f}s after the last one "
                f"started"
                + (f", {waited:.1f}s of it waiting for the restart" if waited else "")
                + f" (nominal {nominal:g}s; bound +{args.max_tail_seconds:g}s; "
                "beyond it the machine could not keep up with --rate, and the soak says "
                "nothing about a steady state)",
            )
        )
        checks.append(
            Check(
                "every message finished",
                stats.unfinished == 0,
                f"{stats.started_messages} started, {len(stats.finished_messages)} finished, "
                f"{stats.unfinished} given up",
            )
        )
        checks.extend(
            flat_checks(
                self.samples, len(lifetimes), args.warmup, args.rss_tolerance, args.fd_tolerance
            )
        )
        checks.append(lag_check(self.samples, args.max_lag_seconds))
        self.delivered = delivered
        return checks

    def _downtime(self) -> float:
        lts = self.run_process.lifetimes
        if len(lts) < 2 or lts[0].stopped is None:
            return 0.0
        return lts[1].ready - lts[0].stopped


async def _sandbox_received(url: str) -> dict:  # type: ignore[type-arg]
    timeout = aiohttp.ClientTimeout(total=120)
    async with (
        aiohttp.ClientSession(timeout=timeout) as session,
        session.get(f"{url}/_sandbox/received") as response,
    ):
        return await response.json()


def _quantile(ordered: list[float], q: float) -> float | None:
    if not ordered:
        return None
    return 1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _progress(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def report(soak: Soak, checks: list[Check], backend: str) -> None:
    args, stats = soak.args, soak.traffic.stats
    every = max(1, round(args.table_every / args.sample_every))
    print(
        f"soak: {args.duration:g}s of traffic at {args.rate:g} DLR/s "
        f"({args.rate / 2:g} messages/s), "
        f"backend {backend}, faults {args.faults}, restart at {args.duration / 2:g}s; "
        f"project every {args.project_interval}, dispatch every {args.dispatch_interval}; "
        f"sampled every {args.sample_every:g}s"
    )
    print(
        f"client: {stats.requests} requests, {stats.answered_2xx} answered 2xx, "
        f"retries {dict(stats.retries) or 0}, launch late by at most {stats.max_launch_delay:.2f}s"
    )
    outcomes = soak.delivered.sandbox_outcomes
    print(
        f"sandbox: {sum(outcomes.values())} callback requests, outcomes {outcomes}, "
        f"{soak.delivered.sandbox_items} statuses recorded, "
        f"{soak.delivered.overlapping} overlapping ids"
    )
    print()
    for row in table(soak.samples, every):
        print(row)
    print(LEGEND)
    print()
    for check in checks:
        print(check.line())
    failed = [c.name for c in checks if c.ok is False]
    print(f"verdict: {'FAIL (' + ', '.join(failed) + ')' if failed else 'PASS'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    length = parser.add_mutually_exclusive_group()
    length.add_argument("--minutes", type=float, default=10.0)
    length.add_argument("--seconds", type=float, default=None)
    parser.add_argument("--rate", type=float, default=50.0, help="DLRs per second")
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--sample-every", type=float, default=5.0, help="seconds")
    parser.add_argument("--table-every", type=float, default=60.0, help="seconds per table row")
    parser.add_argument("--csv", type=Path, default=None, help="write every sample here")
    parser.add_argument("--json", type=Path, default=None, help="write the checks here")
    parser.add_argument("--faults", default=DEFAULT_FAULTS, help="the sandbox's --faults")
    parser.add_argument("--seed", type=int, default=0, help="the sandbox's fault seed")
    parser.add_argument("--warmup", type=float, default=60.0, help="seconds per run process")
    parser.add_argument("--rss-tolerance", type=float, default=0.10)
    parser.add_argument("--fd-tolerance", type=int, default=4)
    parser.add_argument("--max-lag-seconds", type=float, default=60.0)
    parser.add_argument(
        "--max-tail-seconds",
        type=float,
        default=30.0,
        help="how much later than nominal the last message may finish",
    )
    parser.add_argument("--settle-timeout", type=float, default=300.0)
    parser.add_argument("--project-interval", default="5s", help="scheduler.project_interval")
    parser.add_argument("--dispatch-interval", default="2s", help="scheduler.dispatch_interval")
    args = parser.parse_args()
    args.duration = args.seconds if args.seconds is not None else args.minutes * 60
    if args.duration <= 0 or args.rate <= 0 or args.sample_every <= 0:
        parser.error("--minutes/--seconds, --rate and --sample-every must be positive")

    with tempfile.TemporaryDirectory(prefix="soak-") as tmp:
        url = args.database_url or f"sqlite:///{tmp}/soak.db"
        soak = Soak(args, url, Path(tmp))
        soak.prepare()
        checks = asyncio.run(soak.run())
        soak.db.dispose()
    backend = url.split(":", 1)[0].split("+", 1)[0]
    report(soak, checks, backend)
    if args.csv:
        with args.csv.open("w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=CSV_FIELDS)
            writer.writeheader()
            for sample in soak.samples:
                writer.writerow(asdict(sample))
    if args.json:
        args.json.write_text(json.dumps([asdict(c) for c in checks], indent=1))
    return 1 if any(c.ok is False for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
