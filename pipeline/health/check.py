"""One health answer at a time, reused for ``health.cache_seconds``.

A load balancer, Kubernetes and Prometheus may all ask several times a second; each answer
costs a probe write and a few reads, so an answer is kept for a second or two and the
askers in between share it. ``HealthCheck.report`` is for threads (the metrics collector
calls it at scrape time); ``AsyncHealth`` is its face on the event loop: the computation
runs in a worker thread, never on the loop, and concurrent requests await the same one.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pipeline.health.decide import Measurements, Reason, Thresholds, health_reasons


@dataclass(frozen=True, slots=True)
class HealthReport:
    measurements: Measurements | None
    reasons: tuple[Reason, ...] = field(default_factory=tuple)

    @property
    def healthy(self) -> bool:
        return not self.reasons

    def as_json(self) -> dict[str, Any]:
        m = self.measurements
        checked = m.now.isoformat().replace("+00:00", "Z") if m is not None else None
        return {
            "status": "ok" if self.healthy else "unhealthy",
            "checked_at": checked,
            "reasons": [reason.as_json() for reason in self.reasons],
        }


class HealthCheck:
    """Measure and judge, at most once per ``ttl`` seconds, one computation at a time."""

    def __init__(
        self,
        measure: Callable[[], Measurements],
        thresholds: Thresholds,
        *,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._measure = measure
        self._thresholds = thresholds
        self._ttl = ttl
        self._clock = clock
        self._lock = threading.Lock()
        self._cached: tuple[float, HealthReport] | None = None

    def cached(self) -> HealthReport | None:
        """The last answer while it is fresh, else None."""
        cached = self._cached
        if cached is not None and self._clock() - cached[0] < self._ttl:
            return cached[1]
        return None

    def report(self) -> HealthReport:
        """A fresh answer (blocking): the cached one, or one computed now. A caller that
        arrives while another computes waits for that one instead of starting its own."""
        with self._lock:
            fresh = self.cached()
            if fresh is not None:
                return fresh
            measurements = self._measure()
            report = HealthReport(
                measurements, tuple(health_reasons(measurements, self._thresholds))
            )
            self._cached = (self._clock(), report)
            return report


class AsyncHealth:
    """``HealthCheck`` on the event loop: one worker thread at a time, with a deadline."""

    def __init__(self, check: HealthCheck, *, timeout: float) -> None:
        self.check = check
        self._timeout = timeout
        self._running: asyncio.Future[HealthReport] | None = None

    async def report(self) -> HealthReport:
        fresh = self.check.cached()
        if fresh is not None:
            return fresh
        if self._running is None or self._running.done():
            self._running = asyncio.ensure_future(asyncio.to_thread(self.check.report))
        try:
            # shield: a request that gives up does not cancel the computation others await.
            return await asyncio.wait_for(asyncio.shield(self._running), self._timeout)
        except TimeoutError:
            return HealthReport(
                None,
                (
                    Reason(
                        "health_check_timeout",
                        f"the health checks did not finish within {self._timeout:g}s "
                        "(the database may be hanging)",
                    ),
                ),
            )
