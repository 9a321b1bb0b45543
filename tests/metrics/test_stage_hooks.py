"""The in-process stage metrics, fed through the projector's and dispatcher's observer
hooks and the scheduler's events."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from prometheus_client import CollectorRegistry

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.eventlog.append import append
from pipeline.metrics.scheduler import count_job_events
from pipeline.metrics.stages import StageMetrics
from pipeline.projector.runner import run_project
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import TOKEN, TOKEN_ENV, Clock, make_settings, put_state
from tests.projector.events import accepted


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_a_projection_run_times_its_batches_and_marks_its_success(db: Database) -> None:
    registry = CollectorRegistry()
    stages = StageMetrics(registry)
    append(db, [accepted(f"p{n}") for n in range(5)])
    summary = run_project(db, Settings(), batch_size=2, observer=stages)
    assert summary is not None and summary.events >= 5
    batches = value(registry, "smsrecon_projector_batch_seconds_count")
    assert batches == -(-summary.events // 2)  # one observation per non-empty batch
    assert value(registry, "smsrecon_projector_last_success_timestamp") > 0


async def test_dispatch_counts_each_sent_message_and_times_each_request(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    registry = CollectorRegistry()
    stages = StageMetrics(registry)
    for n in range(12):
        put_state(db, f"d{n:02d}")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        settings = make_settings(url, batch_size=5)
        summary = await Dispatcher(db, settings, clock=Clock(), observer=stages).run(
            until_idle=True
        )
    assert summary.acknowledged == 12
    attempts = value(
        registry, "smsrecon_dispatch_attempts_total", partner="default", outcome="acknowledged"
    )
    assert attempts == 12
    assert value(registry, "smsrecon_dispatch_latency_seconds_count") == summary.requests


def test_scheduler_events_count_runs_errors_and_misses() -> None:
    registry = CollectorRegistry()
    stages = StageMetrics(registry)
    scheduler = BackgroundScheduler(timezone=UTC)
    count_job_events(scheduler, stages)
    done = threading.Semaphore(0)
    # Registered after the counting listener, so it hears each event after it is counted.
    scheduler.add_listener(lambda _event: done.release())

    def works() -> None:
        return None

    def fails() -> None:
        raise RuntimeError("boom")

    now = datetime.now(UTC)
    scheduler.add_job(works, "date", run_date=now, id="project", misfire_grace_time=3600)
    scheduler.add_job(fails, "date", run_date=now, id="dispatch", misfire_grace_time=3600)
    scheduler.add_job(
        works, "date", run_date=now - timedelta(hours=1), id="late", misfire_grace_time=1
    )
    scheduler.start()
    try:
        seen = 0
        # Job events only: scheduler start and job-added events also reach the listener.
        while (
            value(registry, "smsrecon_scheduler_job_runs_total", job="project", outcome="executed")
            + value(registry, "smsrecon_scheduler_job_runs_total", job="dispatch", outcome="error")
            + value(registry, "smsrecon_scheduler_job_missed_total", job="late")
            < 3
        ):
            assert done.acquire(timeout=30), "the scheduler reported no more events"
            seen += 1
    finally:
        scheduler.shutdown(wait=True)
    assert seen > 0
