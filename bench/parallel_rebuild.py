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

Prints the best time of each worker count and the speed-up against one worker. Without
--postgres-url a throwaway PostgreSQL server is started from the installed binaries.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.project import BATCH, RULES, fill, raw_scan
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


def run(url: str, label: str, events: int, counts: list[int], repeat: int) -> None:
    db = Database.from_url(url)
    schema.upgrade(db.engine)
    try:
        fill(db, 0, events, seed=1)
        applied = catch_up(db, RULES, grace_seconds=GRACE, batch_size=BATCH)[0]
        scan = raw_scan(db)
        print(f"{label}: {applied} events; raw scan {scan:.2f}s", flush=True)
        best: dict[int, float] = {}
        for attempt in range(repeat):
            for workers in counts:
                elapsed, steps = rebuild(db, workers)
                if workers > 1:
                    differences = replay.verify(db, RULES, grace_seconds=GRACE,
                                                batch_size=BATCH)[1]  # fmt: skip
                    assert differences == 0, f"{workers} workers: {differences} differences"
                best[workers] = min(best.get(workers, elapsed), elapsed)
                detail = ", ".join(f"{k} {v:.1f}s" for k, v in steps.items())
                print(f"{label}: rebuild, {workers} worker(s), try {attempt + 1}: "
                      f"{elapsed:.1f}s = {applied / elapsed:,.0f} ev/s"
                      f"{f' ({detail}); verify: identical' if detail else ''}",
                      flush=True)  # fmt: skip
        base = best[counts[0]]
        for workers in counts:
            print(f"{label}: best of {repeat}, {workers} worker(s): {best[workers]:.1f}s, "
                  f"speed-up {base / best[workers]:.2f}x vs {counts[0]}")  # fmt: skip
    finally:
        db.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--backend", choices=["sqlite", "postgresql"], default="postgresql")
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            run(f"sqlite:///{tmp}/bench_parallel.db", "SQLite", args.events, counts, args.repeat)
        return
    from sqlalchemy import create_engine, text

    server = None
    admin = args.postgres_url
    if admin is None:
        from tests.pg_server import start_throwaway

        server = start_throwaway()
        admin = server.url
    try:
        engine = create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(text("DROP DATABASE IF EXISTS bench_parallel"))
            conn.execute(text("CREATE DATABASE bench_parallel"))
        engine.dispose()
        base = admin.rsplit("/", 1)[0]
        run(f"{base}/bench_parallel", "PostgreSQL", args.events, counts, args.repeat)
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
