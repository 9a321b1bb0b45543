"""APScheduler's job events as counters: runs by outcome, and runs missed.

A job that catches its own failure (the dispatch job logs it and returns) counts as
executed; its failure shows in its own metrics and logs. An exception that reaches the
scheduler counts as ``error``.
"""

from __future__ import annotations

from typing import Any

from apscheduler.events import (
    EVENT_JOB_ERROR,
    EVENT_JOB_EXECUTED,
    EVENT_JOB_MAX_INSTANCES,
    EVENT_JOB_MISSED,
)
from apscheduler.schedulers.base import BaseScheduler

from pipeline.metrics.stages import StageMetrics

#: APScheduler event code -> the ``outcome`` label of smsrecon_scheduler_job_runs_total.
RUN_OUTCOMES = {
    EVENT_JOB_EXECUTED: "executed",
    EVENT_JOB_ERROR: "error",
    EVENT_JOB_MAX_INSTANCES: "skipped",
}


def count_job_events(scheduler: BaseScheduler, metrics: StageMetrics) -> None:
    def listener(event: Any) -> None:
        if event.code == EVENT_JOB_MISSED:
            metrics.job_was_missed(event.job_id)
        else:
            metrics.job_ran(event.job_id, RUN_OUTCOMES[event.code])

    scheduler.add_listener(
        listener,
        EVENT_JOB_EXECUTED | EVENT_JOB_ERROR | EVENT_JOB_MISSED | EVENT_JOB_MAX_INSTANCES,
    )
