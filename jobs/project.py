"""The scheduled projection: ``smsrecon project`` every ``scheduler.project_interval``.

Several schedulers (on several machines) may run this job at once: the projector lock in
the database, not the scheduler, decides who projects; the others return at once.
"""

from __future__ import annotations

import logging

from apscheduler.schedulers.base import BaseScheduler

from jobs.interval import add_interval_job
from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.projector.runner import ProjectorObserver, ProjectSummary, run_project

log = logging.getLogger("smsrecon.jobs.project")

JOB_ID = "project"


def project_job(
    db: Database, settings: Settings, observer: ProjectorObserver | None = None
) -> ProjectSummary | None:
    """One scheduled run: the same function as ``smsrecon project``, never waiting."""
    summary = run_project(db, settings, wait=False, observer=observer)
    if summary is None:
        log.debug("another projector is active; skipped")
    elif summary.events:
        log.info(summary.line())
    return summary


def add_project_job(
    scheduler: BaseScheduler,
    settings: Settings,
    db: Database,
    observer: ProjectorObserver | None = None,
) -> None:
    """Register the job: one instance at a time, missed runs coalesced into one."""
    add_interval_job(
        scheduler,
        project_job,
        every=settings.scheduler.project_interval,
        # The observer only when there is one: the job's arguments stay what they were.
        args=(db, settings) if observer is None else (db, settings, observer),
        job_id=JOB_ID,
        name="project events into message_state",
        settings=settings,
    )
