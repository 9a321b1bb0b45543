"""The scheduler inside ``smsrecon run``: projector and dispatcher on their intervals.

APScheduler only decides *when* this process tries; the database decides *who* does the
work (the projector's lock, the dispatcher's leases), so any number of ``run`` processes on
any number of machines can share one PostgreSQL database safely. A thread-pool scheduler is
used because the jobs are blocking database work; shutting it down with ``wait=True`` lets a
job in progress finish its transaction before the process exits.
"""

from __future__ import annotations

from datetime import UTC
from typing import TYPE_CHECKING

from apscheduler.schedulers.background import BackgroundScheduler

from pipeline.config import Settings
from pipeline.db.engine import Database

if TYPE_CHECKING:
    from pipeline.metrics.stages import StageMetrics


def build_scheduler(
    settings: Settings, db: Database, metrics: StageMetrics | None = None
) -> BackgroundScheduler:
    """The scheduler with both jobs; with ``metrics``, the jobs and the scheduler's own
    events (runs, errors, misses) feed the stage metrics."""
    from jobs.dispatch import add_dispatch_job
    from jobs.partitions import add_partitions_job
    from jobs.project import add_project_job

    scheduler = BackgroundScheduler(timezone=UTC)
    add_project_job(scheduler, settings, db, metrics)
    add_dispatch_job(scheduler, settings, db, metrics)
    add_partitions_job(scheduler, settings, db)
    if metrics is not None:
        from pipeline.metrics.scheduler import count_job_events

        count_job_events(scheduler, metrics)
    return scheduler
