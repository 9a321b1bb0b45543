"""The scheduler inside ``smsrecon run``: projector and dispatcher on their intervals.

APScheduler only decides *when* this process tries; the database decides *who* does the
work (the projector's lock, the dispatcher's leases), so any number of ``run`` processes on
any number of machines can share one PostgreSQL database safely. A thread-pool scheduler is
used because the jobs are blocking database work; shutting it down with ``wait=True`` lets a
job in progress finish its transaction before the process exits.
"""

from __future__ import annotations

from datetime import UTC

from apscheduler.schedulers.background import BackgroundScheduler

from pipeline.config import Settings
from pipeline.db.engine import Database


def build_scheduler(settings: Settings, db: Database) -> BackgroundScheduler:
    from jobs.dispatch import add_dispatch_job
    from jobs.partitions import add_partitions_job
    from jobs.project import add_project_job

    scheduler = BackgroundScheduler(timezone=UTC)
    add_project_job(scheduler, settings, db)
    add_dispatch_job(scheduler, settings, db)
    add_partitions_job(scheduler, settings, db)
    return scheduler
