"""Prometheus metrics of the ingest server, on a registry of its own.

A registry per app (not the process-wide default) lets ``smsrecon run`` mount the ingest app
beside other parts, and lets tests build many apps in one process, without "duplicated
timeseries" errors.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

#: text/plain; version=0.0.4; charset=utf-8
CONTENT_TYPE = CONTENT_TYPE_LATEST


class IngestMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "smsrecon_ingest_requests",
            "HTTP requests answered, by route template and status code.",
            ["route", "status"],
            registry=self.registry,
        )
        self.events_appended = Counter(
            "smsrecon_ingest_events_appended",
            "Events newly stored in the log.",
            registry=self.registry,
        )
        self.duplicates = Counter(
            "smsrecon_ingest_events_duplicate",
            "Events received again (same dedup key) and not stored twice.",
            registry=self.registry,
        )
        self.quarantined = Counter(
            "smsrecon_ingest_quarantined",
            "Requests refused as bad input and kept in quarantine.",
            ["route"],
            registry=self.registry,
        )
        self.quarantine_not_kept = Counter(
            "smsrecon_ingest_quarantine_not_kept",
            "Requests refused as bad input but not kept: too large, or the quarantine full.",
            ["route", "reason"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "smsrecon_ingest_auth_failures",
            "DLR requests refused for missing or wrong credentials, by carrier.",
            ["carrier"],
            registry=self.registry,
        )
        self.commit_events = Histogram(
            "smsrecon_ingest_commit_batch_events",
            "Events per group-commit transaction.",
            buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000),
            registry=self.registry,
        )
        self.commit_seconds = Histogram(
            "smsrecon_ingest_commit_seconds",
            "Duration of each group-commit transaction.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )

        #: ``requests`` children by (route, status): ``.labels()`` validates and hashes its
        #: arguments under a lock on every call, which is per-request work worth caching.
        self._request_children: dict[tuple[str, int], Any] = {}

    def request_counter(self, route: str, status: int) -> Any:
        """The ``requests`` counter child for one route template and status code."""
        key = (route, status)
        child = self._request_children.get(key)
        if child is None:
            child = self.requests.labels(route, str(status))
            self._request_children[key] = child
        return child

    def observe_commit(self, events: int, seconds: float) -> None:
        self.commit_events.observe(events)
        self.commit_seconds.observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)
