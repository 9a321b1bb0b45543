"""`smsrecon run`'s scheduler: both jobs on their intervals, with the safety settings."""

from __future__ import annotations

from pipeline.config import Settings
from pipeline.db.engine import Database


def test_project_and_dispatch_jobs_run_one_at_a_time_and_coalesce(db: Database) -> None:
    from jobs.project import project_job
    from jobs.scheduler import build_scheduler

    settings = Settings.model_validate(
        {"scheduler": {"project_interval": "3s", "dispatch_interval": "500ms",
                       "misfire_grace_time": "45s"}}
    )  # fmt: skip
    scheduler = build_scheduler(settings, db)
    scheduler.start(paused=True)  # job objects are complete once the scheduler has started
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"project", "dispatch", "partitions"}
        assert jobs["project"].trigger.interval.total_seconds() == 3
        assert jobs["dispatch"].trigger.interval.total_seconds() == 0.5
        for job in jobs.values():
            assert (job.max_instances, job.coalesce, job.misfire_grace_time) == (1, True, 45)
        assert jobs["project"].func is project_job and jobs["project"].args == (db, settings)
    finally:
        scheduler.shutdown(wait=False)
