"""Parallel rebuild: ``replay --rebuild --workers N`` against one worker, same log, same run.

    python bench/parallel_rebuild.py [--events N] [--workers 1,2] [--repeat R]
                                     [--backend postgresql|sqlite] [--postgres-url URL]

On a freshly migrated database (PostgreSQL by default: the parallel fold is for it):

1. appends N events of ``bench/project.py`` traffic and projects them (the live tables);
2. times a raw scan of the log by the bare driver (the floor of any reader);
3. for each worker count, R times in turn (1, 2, 1, 2, ... so a load change on a shared
   machine hits both alike): times ``replay.rebuild(workers=N)``, the whole command's work
   under the lock: the claims pass, the workers, the merge and the swap; and prints the
   seconds of each step of the parallel fold;
4. checks after each parallel rebuild that one process folds the very same rows
   (``replay.verify`` with one worker: 0 differences), so a speed-up never comes from a
   different answer.

Prints the best and the median time of each worker count and the speed-up against one
worker. On PostgreSQL the log is analysed after it is filled, as autovacuum would have done
on a live server (this machine's server runs without autovacuum).

``--cpu`` (PostgreSQL on this machine) also counts CPU seconds, which a loaded machine does
not change much: the one-process fold and each worker's fold are run one after another in
this process over one connection, and the CPU of this process and of that connection's
server process (``/proc/<pid>/stat``) is read before and after each. A worker alternates
between Python and its server process, as one fold does, so on idle cores the fold takes
about its client + server CPU, and N workers about the largest worker's plus the serial
steps: the speed-up this predicts is printed beside the measured one.

Without --postgres-url a throwaway PostgreSQL server is started from the installed
binaries.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.project import BATCH, RULES, fill, fresh_postgres, raw_scan
from pipeline.db import schema
from pipeline.db.engine import Database
from pipeline.projector import parallel, replay
from pipeline.projector.runner import catch_up

GRACE = 600.0


def rebuild(db: Database, workers: int) -> tuple[float, dict[str, float]]:
    steps: dict[str, float] = {}
    original = parallel.fold_into_shadow

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        return original(*args, timings=steps, **kwargs)

    parallel.fold_into_shadow = timed  # type: ignore[assignment]
    try:
        started = time.perf_counter()
        replay.rebuild(db, RULES, grace_seconds=GRACE, batch_size=BATCH, workers=workers)
        return time.perf_counter() - started, steps
    finally:
        parallel.fold_into_shadow = original  # type: ignore[assignment]


def _server_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_seconds(url: str, workers: int) -> None:
    """Client and server CPU of one fold and of each of ``workers`` shard folds."""
    from sqlalchemy import text

    from pipeline.projector.runner import head_position
    from pipeline.projector.shard import (
        Shard,
        drop_claims,
        drop_tables,
        fill_claims,
        fold_shard,
        stage_tables,
    )

    db = Database.from_url(url, pool_size=1)
    upto = head_position(db)
    with db.read() as conn:
        pid = int(conn.scalar(text("SELECT pg_backend_pid()")))

    def measure(label: str, fold) -> tuple[float, float]:  # type: ignore[no-untyped-def]
        client, server, wall = time.process_time(), _server_cpu(pid), time.perf_counter()
        fold()
        with db.read() as conn:
            assert int(conn.scalar(text("SELECT pg_backend_pid()"))) == pid
        c, s = time.process_time() - client, _server_cpu(pid) - server
        print(f"  {label}: client {c:.1f}s + server {s:.1f}s CPU "
              f"(wall {time.perf_counter() - wall:.1f}s)", flush=True)  # fmt: skip
        return c, s

    try:
        one = measure("one process", lambda: replay._drop_shadow(db, replay.fold_into_shadow(
            db, RULES, grace_seconds=GRACE, batch_size=BATCH, upto=upto)))  # fmt: skip
        claims = measure("claims", lambda: fill_claims(db, upto, ()))
        shards = [
            measure(f"worker {k} of {workers}", lambda k=k: fold_shard(
                db, parallel.portable(RULES), Shard(k, workers), grace_seconds=GRACE,
                batch_size=BATCH, upto=upto))
            for k in range(workers)
        ]  # fmt: skip
        total = sum(c + s for c, s in shards)
        longest = max(c + s for c, s in shards)
        serial = sum(claims)
        print(f"  CPU: one process {sum(one):.1f}s; {workers} workers {total:.1f}s in all "
              f"({total / sum(one):.2f}x the work), the largest {longest:.1f}s, claims "
              f"{serial:.1f}s; predicted speed-up on {workers} idle cores (merge not counted) "
              f"{sum(one) / (longest + serial):.2f}x")  # fmt: skip
    finally:
        for k in range(workers):
            drop_tables(db, stage_tables(k))
        drop_claims(db)
        db.dispose()


def run(url: str, label: str, events: int, counts: list[int], repeat: int) -> None:
    db = Database.from_url(url)
    schema.upgrade(db.engine)
    try:
        fill(db, 0, events, seed=1)
        if db.is_postgres:
            # Statistics of the log, as autovacuum keeps them on a live server: without
            # them (a server with autovacuum off, as this machine's is) every batch's read
            # is planned as a scan of the whole log, for one worker and for two alike.
            with db.write() as conn:
                conn.exec_driver_sql("ANALYZE events")
        applied = catch_up(db, RULES, grace_seconds=GRACE, batch_size=BATCH)[0]
        scan, _scan_cpu = raw_scan(db)
        print(f"{label}: {applied} events; raw scan {scan:.2f}s", flush=True)
        best: dict[int, float] = {}
        tries: dict[int, list[float]] = {}
        for attempt in range(repeat):
            for workers in counts:
                elapsed, steps = rebuild(db, workers)
                if workers > 1:
                    differences = replay.verify(db, RULES, grace_seconds=GRACE,
                                                batch_size=BATCH)[1]  # fmt: skip
                    assert differences == 0, f"{workers} workers: {differences} differences"
                best[workers] = min(best.get(workers, elapsed), elapsed)
                tries.setdefault(workers, []).append(elapsed)
                detail = ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
                print(f"{label}: rebuild, {workers} worker(s), try {attempt + 1}: "
                      f"{elapsed:.1f}s = {applied / elapsed:,.0f} ev/s"
                      f"{f' ({detail}); verify: identical' if detail else ''}",
                      flush=True)  # fmt: skip
        base = best[counts[0]]
        middle = statistics.median(tries[counts[0]])
        for workers in counts:
            median = statistics.median(tries[workers])
            print(f"{label}: best of {repeat}, {workers} worker(s): {best[workers]:.1f}s, "
                  f"speed-up {base / best[workers]:.2f}x vs {counts[0]}; median "
                  f"{median:.1f}s, speed-up {middle / median:.2f}x")  # fmt: skip
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--postgres-url", default=None)
    parser.add_argument("--cpu", action="store_true", help="also count CPU seconds (see above)")
    parser.add_argument(
        "--only-cpu", metavar="DATABASE_URL", help="only count CPU, on the log in this database"
    )
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    if args.only_cpu:
        cpu_seconds(args.only_cpu, max(counts))
        return
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench_parallel.db", "SQLite", args.events, counts, args.repeat)
        return
    with fresh_postgres(args.postgres_url, "bench_parallel") as base:
        run(f"{base}/bench_parallel", "PostgreSQL", args.events, counts, args.repeat)
        if args.cpu:
            cpu_seconds(f"{base}/bench_parallel", max(counts))


if __name__ == "__main__":
    main()
