"""How PostgreSQL reads the projector's batches from a log it has no statistics of.

    python bench/log_read_plan.py [--events N] [--postgres-url URL]

On a fresh database (``bench/project.py`` traffic, N events), prints the plan of one batch's
read (``position > :after ORDER BY position LIMIT 5000``) and the seconds to read the whole
log in such batches through the driver, before and after ``ANALYZE events`` (what
``Backend.refresh_log_statistics`` runs for the owner). Without --postgres-url a throwaway
server is started from the installed binaries (it runs autovacuum, which may analyse the log
on its own a minute in; the machine's server here runs without it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import text

from bench.project import BATCH, fill, fresh_postgres
from pipeline.db import schema
from pipeline.db.engine import Database

READ = "SELECT * FROM events WHERE position > %s ORDER BY position LIMIT %s"


def read_all(db: Database, events: int) -> tuple[str, float]:
    with db.read() as conn:
        plan = conn.execute(text(f"EXPLAIN {READ % (events // 2, BATCH)}")).all()
        cursor = conn.connection.cursor()
        started = time.perf_counter()
        last = 0
        while True:
            cursor.execute(READ, (last, BATCH))
            rows = cursor.fetchall()
            if not rows:
                break
            last = rows[-1][0]
        seconds = time.perf_counter() - started
        return " / ".join(r[0].split("(")[0].strip() for r in plan[:3]), seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--postgres-url", default=None)
    args = parser.parse_args()
    with fresh_postgres(args.postgres_url, "bench_log_plan") as base:
        db = Database.from_url(f"{base}/bench_log_plan")
        try:
            schema.upgrade(db.engine)
            fill(db, 0, args.events, seed=1)
            for label in ("no statistics", "analysed"):
                plan, seconds = read_all(db, args.events)
                print(f"{label}: whole log read in batches in {seconds:.2f}s; plan: {plan}")
                with db.write() as conn:
                    conn.exec_driver_sql("ANALYZE events")
        finally:
            db.dispose()


if __name__ == "__main__":
    main()
