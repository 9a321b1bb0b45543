"""The scheduled partition check: the log's monthly partitions created ahead of time.

Every ``growth.partition_check_interval`` (and once at start) this month's and the next
``growth.partitions_ahead`` months' partitions are made if missing, so that a month's
events never fall into the DEFAULT partition. On SQLite, and on PostgreSQL while the log is
not partitioned, it does nothing. Several processes may run it at once: creating a
partition that exists is a no-op, and a check that waits more than a few seconds for the
log's lock (a long report holding it) gives up rather than queue every append behind it;
with months ahead, a later run has time to succeed.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from apscheduler.schedulers.base import BaseScheduler

from jobs.interval import add_interval_job
from pipeline.config import Settings
from pipeline.db.engine import Database

JOB_ID = "partitions"
#: How long a check waits for the log's lock before it gives up until the next run.
LOCK_TIMEOUT_MS = 3_000
log = logging.getLogger("smsrecon.jobs.partitions")


def run_partitions_job(settings: Settings, db: Database) -> list[str] | None:
    """One check: the partitions created, or None when it failed (the next run retries)."""
    try:
        with db.write() as conn:
            made = db.backend.create_event_partitions(
                conn, settings.growth.partitions_ahead, lock_timeout_ms=LOCK_TIMEOUT_MS
            )
    except Exception:
        log.exception("partition check failed; the next run retries")
        return None
    if made:
        log.info("created event partitions %s", ", ".join(made))
    return made


def add_partitions_job(scheduler: BaseScheduler, settings: Settings, db: Database) -> None:
    add_interval_job(
        scheduler,
        run_partitions_job,
        every=settings.growth.partition_check_interval,
        args=(settings, db),
        job_id=JOB_ID,
        name="create the log's monthly partitions ahead",
        settings=settings,
    )
    # Also at start: a process started after a long stop must not wait an interval.
    scheduler.modify_job(JOB_ID, next_run_time=datetime.now(UTC))
