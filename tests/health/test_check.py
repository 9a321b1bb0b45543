"""The health answer's cache: one computation at a time, reused for ``ttl`` seconds."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime

from pipeline.health.check import AsyncHealth, HealthCheck
from pipeline.health.decide import Measurements, Thresholds

LIMITS = Thresholds(max_lag_events=1, max_lag_seconds=1, max_dispatch_age=1, min_free_bytes=0)
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Ticks:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_an_answer_is_reused_until_ttl_then_computed_again() -> None:
    calls: list[int] = []
    clock = Ticks()

    def measure() -> Measurements:
        calls.append(1)
        return Measurements(now=NOW)

    check = HealthCheck(measure, LIMITS, ttl=1.5, clock=clock)
    check.report()
    clock.now = 1.4
    check.report()
    assert len(calls) == 1
    clock.now = 1.6
    assert check.report().healthy
    assert len(calls) == 2


async def test_concurrent_requests_share_one_computation_off_the_event_loop() -> None:
    release = threading.Event()
    threads: list[str] = []

    def measure() -> Measurements:
        threads.append(threading.current_thread().name)
        release.wait(timeout=30)
        return Measurements(now=NOW, head_position=5, checkpoint_position=0)

    health = AsyncHealth(HealthCheck(measure, LIMITS, ttl=60), timeout=60)
    waiting = [asyncio.create_task(health.report()) for _ in range(5)]
    await asyncio.sleep(0)  # every task reaches its await on the one computation
    release.set()
    reports = await asyncio.gather(*waiting)
    assert len(threads) == 1 and threads[0] != threading.current_thread().name
    assert all(r is reports[0] for r in reports)
    assert [r.code for r in reports[0].reasons] == ["projector_lag_events"]


async def test_a_hanging_computation_answers_503_at_the_deadline() -> None:
    release = threading.Event()

    def measure() -> Measurements:
        release.wait(timeout=30)
        return Measurements(now=NOW)

    health = AsyncHealth(HealthCheck(measure, LIMITS, ttl=60), timeout=0.05)
    try:
        report = await health.report()
    finally:
        release.set()
    assert not report.healthy
    assert [r.code for r in report.reasons] == ["health_check_timeout"]
