"""The scheduled ``dispatch`` job: what ``smsrecon dispatch --until-idle`` does, every
``scheduler.dispatch_interval``.

``max_instances=1`` and ``coalesce=True``: a run that outlasts the interval is never joined
by a second one in this process, and the ticks it missed become one run, not a burst.
Several processes may still run it at once; the leases in ``deliveries`` keep them apart.
A failing run is logged (tokens masked) and the next tick tries again: the job never lets
an exception kill the scheduler thread.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler

from jobs.interval import add_interval_job
from pipeline import logsafe
from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch.dispatcher import DispatchSummary, dispatch_once
from pipeline.dispatch.observe import DispatchObserver

JOB_ID = "dispatch"
log = logging.getLogger("smsrecon.jobs.dispatch")


def run_dispatch_job(
    settings: Settings, db: Database, observer: DispatchObserver | None = None
) -> DispatchSummary | None:
    """One tick: dispatch until idle; the summary, or None when the run failed."""
    try:
        summary = dispatch_once(db, settings, until_idle=True, observer=observer)
    except Exception:
        log.exception("dispatch run failed; the next run retries")
        return None
    if summary.claimed:
        log.info("%s", summary.line())
    return summary


def add_dispatch_job(
    scheduler: BaseScheduler,
    settings: Settings,
    db: Database,
    observer: DispatchObserver | None = None,
) -> None:
    logsafe.install()
    add_interval_job(
        scheduler,
        run_dispatch_job,
        every=settings.scheduler.dispatch_interval,
        args=(settings, db) if observer is None else (settings, db, observer),
        job_id=JOB_ID,
        name="dispatch statuses to Altegio",
        settings=settings,
    )
