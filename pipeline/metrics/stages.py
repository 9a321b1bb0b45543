"""In-process stage metrics, fed by the projector, the dispatcher and the scheduler.

The projector and dispatcher never import this module: they call an optional observer
(``ProjectorObserver`` in ``pipeline.projector.runner``, ``DispatchObserver`` in
``pipeline.dispatch.observe``), which ``StageMetrics`` is. Counters here count this
process's work only: with several ``run`` processes, sum them over instances.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from pipeline.dispatch.model import Resolution

#: Seconds: from a millisecond batch to a minute-long catch-up batch.
BATCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
#: Seconds of one request to Altegio (dispatcher.timeout defaults to 10s).
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class StageMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.projector_batch_seconds = Histogram(
            "smsrecon_projector_batch_seconds",
            "Duration of each projector batch transaction (this process).",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.projector_last_success = Gauge(
            "smsrecon_projector_last_success_timestamp",
            "Unix time this process last finished a projection run caught up to the head "
            "of the log (0: never).",
            registry=registry,
        )
        self.dispatch_attempts = Counter(
            "smsrecon_dispatch_attempts",
            "Messages sent to Altegio, by partner and what became of them "
            "(acknowledged, retry, parked, expired, circuit).",
            ["partner", "outcome"],
            registry=registry,
        )
        self.dispatch_latency = Histogram(
            "smsrecon_dispatch_latency_seconds",
            "Duration of each request to Altegio, answered or not.",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.job_runs = Counter(
            "smsrecon_scheduler_job_runs",
            "Scheduled job runs by outcome: executed, error, or skipped (max_instances: the "
            "previous run was still going).",
            ["job", "outcome"],
            registry=registry,
        )
        self.job_missed = Counter(
            "smsrecon_scheduler_job_missed",
            "Scheduled runs that started later than scheduler.misfire_grace_time and were not run.",
            ["job"],
            registry=registry,
        )

    # -- ProjectorObserver ---------------------------------------------------------

    def batch_projected(self, events: int, seconds: float) -> None:
        self.projector_batch_seconds.observe(seconds)

    def caught_up(self, unix_time: float) -> None:
        self.projector_last_success.set(unix_time)

    # -- DispatchObserver -----------------------------------------------------------

    def request_done(self, seconds: float) -> None:
        self.dispatch_latency.observe(seconds)

    def settled(self, resolutions: Sequence[Resolution]) -> None:
        for resolution in resolutions:
            if resolution.outcome is not None:  # sent: one attempt
                self.dispatch_attempts.labels(resolution.item.partner, resolution.result).inc()

    # -- scheduler (``pipeline.metrics.scheduler``) ----------------------------------

    def job_ran(self, job: str, outcome: str) -> None:
        self.job_runs.labels(job, outcome).inc()

    def job_was_missed(self, job: str) -> None:
        self.job_missed.labels(job).inc()


STAGES_KEY = web.AppKey("stage_metrics", StageMetrics)


def stage_metrics_of(app: web.Application) -> StageMetrics:
    return app[STAGES_KEY]
