"""The scheduler's partition check: registered to run at start and every interval; it does
nothing where the log is one table, and never raises into the scheduler."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobs.partitions import JOB_ID, run_partitions_job
from pipeline.config import Settings
from pipeline.db.engine import Database


def test_the_check_runs_at_start_then_every_interval(db: Database) -> None:
    from jobs.scheduler import build_scheduler

    settings = Settings.model_validate({"growth": {"partition_check_interval": "2h"}})
    scheduler = build_scheduler(settings, db)
    scheduler.start(paused=True)
    try:
        job = scheduler.get_job(JOB_ID)
        assert job.trigger.interval.total_seconds() == 7200
        assert job.next_run_time <= datetime.now(UTC) + timedelta(seconds=1)
        assert (job.max_instances, job.coalesce) == (1, True)
    finally:
        scheduler.shutdown(wait=False)


def test_one_table_needs_no_partitions(db: Database) -> None:
    assert run_partitions_job(Settings.model_validate({}), db) == []


def test_a_failing_check_is_logged_not_raised() -> None:
    broken = Database.from_url("postgresql+psycopg://nobody@127.0.0.1:1/none")
    try:
        assert run_partitions_job(Settings.model_validate({}), broken) is None
    finally:
        broken.dispose()
