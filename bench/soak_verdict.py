"""The soak's verdict from its samples and end checks: pure functions, no I/O.

Flat (RSS, descriptors): judged per lifetime of ``run`` (the restart starts a fresh
process, so the two halves are judged apart). In each, the samples taken after the warm-up
(the first ``warmup`` seconds of that process, or a quarter of its life if that is
shorter) are cut in thirds; the median of the last third may exceed the median of the
first third by at most ``rss_tolerance`` (a fraction) for RSS and by at most
``fd_tolerance`` descriptors. Descriptors are counted without the connections accepted on
the ingest port (as many as the client keeps open) and the database's (SQLite files, or
PostgreSQL connections: the pool opens them on demand up to its size), which are shown
beside. Fewer than six samples after the warm-up is "n/a" (the run
was too short to say), which is printed and does not fail.

Bounded lag: the largest ``lag_seconds`` sampled (the age of the oldest event not yet
projected) stays at or under ``max_lag_seconds``.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass


@dataclass(frozen=True)
class Sample:
    t: float  # seconds since the traffic started
    phase: str  # traffic | restart (run stopping or starting) | settle (traffic over)
    lifetime: int  # which run process (1, 2)
    age: float  # seconds since that process printed its banner
    rss_kib: int | None
    fds: int | None
    conns: int | None  # of fds, connections accepted on the ingest port
    db_fds: int | None  # of fds, the database's (files or connections)
    threads: int | None
    cpu_pct: float | None
    events: int
    lag_events: int
    lag_seconds: float
    backlog: int
    sent_2xx: int
    p50_ms: float | None  # the client's time to a 2xx over the interval: median
    max_ms: float | None  # and slowest
    retries: int


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None  # None: n/a
    detail: str

    def line(self) -> str:
        mark = {True: "PASS", False: "FAIL", None: "n/a "}[self.ok]
        return f"{mark}  {self.name}: {self.detail}"


MIN_SAMPLES = 6


def _thirds(values: list[float]) -> tuple[float, float]:
    third = max(1, len(values) // 3)
    return statistics.median(values[:third]), statistics.median(values[-third:])


def steady_samples(samples: list[Sample], lifetime: int, warmup: float) -> list[Sample]:
    """The samples of one process under traffic, after its warm-up."""
    mine = [
        s
        for s in samples
        if s.lifetime == lifetime and s.phase == "traffic" and s.rss_kib is not None
    ]
    if not mine:
        return []
    span = max(s.age for s in mine)
    cut = min(warmup, span / 4)
    return [s for s in mine if s.age >= cut]


def flat_checks(
    samples: list[Sample], lifetimes: int, warmup: float, rss_tolerance: float, fd_tolerance: int
) -> list[Check]:
    checks = []
    for n in range(1, lifetimes + 1):
        steady = steady_samples(samples, n, warmup)
        if len(steady) < MIN_SAMPLES:
            note = f"{len(steady)} samples after warm-up, fewer than {MIN_SAMPLES}"
            checks.append(Check(f"RSS flat, run #{n}", None, note))
            checks.append(Check(f"fds flat, run #{n}", None, note))
            continue
        first, last = _thirds([s.rss_kib / 1024 for s in steady])  # type: ignore[operator]
        growth = (last - first) / first
        checks.append(
            Check(
                f"RSS flat, run #{n}",
                growth <= rss_tolerance,
                f"median {first:.1f} MiB (first third) -> {last:.1f} MiB (last third), "
                f"{growth:+.1%} (tolerance +{rss_tolerance:.0%}; {len(steady)} samples)",
            )
        )
        own = [float(s.fds - s.conns - s.db_fds) for s in steady]  # type: ignore[operator]
        f_first, f_last = _thirds(own)
        conns = [s.conns for s in steady]
        dbs = [s.db_fds for s in steady]
        checks.append(
            Check(
                f"fds flat, run #{n}",
                f_last - f_first <= fd_tolerance,
                f"median {f_first:.0f} -> {f_last:.0f} besides the ingest connections and the "
                f"database's (tolerance +{fd_tolerance}; max {max(own):.0f}; "
                f"ingest {min(conns)}-{max(conns)}, database {min(dbs)}-{max(dbs)})",  # type: ignore[type-var]
            )
        )
    return checks


def lag_check(samples: list[Sample], max_lag_seconds: float) -> Check:
    if not samples:
        return Check("lag bounded", None, "no samples")
    worst = max(samples, key=lambda s: s.lag_seconds)
    most = max(s.lag_events for s in samples)
    return Check(
        "lag bounded",
        worst.lag_seconds <= max_lag_seconds,
        f"max {worst.lag_seconds:.1f} s at t={worst.t:.0f}s (bound {max_lag_seconds:g} s); "
        f"max {most} events behind",
    )


def table(samples: list[Sample], every: int = 1) -> list[str]:
    """The samples as aligned text, every ``every``-th row (and always the last)."""
    head = (
        f"{'t(s)':>6} {'run':>3} {'RSS MiB':>8} {'fds':>4} {'conn':>4} {'db':>3} {'thr':>4} "
        f"{'cpu%':>5} "
        f"{'events':>8} {'lag ev':>7} {'lag s':>6} {'backlog':>7} {'2xx':>8} {'p50 ms':>6} "
        f"{'max ms':>6} {'retry':>6}"
    )
    rows = [head]
    picked = samples[::every]
    if samples and picked[-1] is not samples[-1]:
        picked.append(samples[-1])
    for s in picked:
        rss = "-" if s.rss_kib is None else f"{s.rss_kib / 1024:.1f}"
        cpu = "-" if s.cpu_pct is None else f"{s.cpu_pct:.0f}"
        run = {"traffic": str(s.lifetime), "restart": "-", "settle": f"{s.lifetime}d"}[s.phase]
        rows.append(
            f"{s.t:>6.0f} {run:>3} {rss:>8} {_opt(s.fds):>4} {_opt(s.conns):>4} "
            f"{_opt(s.db_fds):>3} {_opt(s.threads):>4} "
            f"{cpu:>5} {s.events:>8} {s.lag_events:>7} {s.lag_seconds:>6.1f} {s.backlog:>7} "
            f"{s.sent_2xx:>8} {_ms(s.p50_ms):>6} {_ms(s.max_ms):>6} {s.retries:>6}"
        )
    return rows


LEGEND = (
    "run: the run process sampled (-: stopping or starting; 1d/2d: draining after the "
    "traffic); conn, db: of fds, connections accepted on the ingest port and the database's "
    "(files or connections); events: the log's last "
    "position; lag ev / lag s: events after the projector's checkpoint and the age of the "
    "oldest; backlog: messages whose payload Altegio has not acknowledged; 2xx, retry: the "
    "client's answers so far; p50/max ms: the client's time to a 2xx over the sampling interval "
    "ending at that row (the median and the slowest)"
)


def _opt(value: int | None) -> str:
    return "-" if value is None else str(value)


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f}"


CSV_FIELDS = (
    "t",
    "phase",
    "lifetime",
    "age",
    "rss_kib",
    "fds",
    "conns",
    "db_fds",
    "threads",
    "cpu_pct",
    "events",
    "lag_events",
    "lag_seconds",
    "backlog",
    "sent_2xx",
    "p50_ms",
    "max_ms",
    "retries",
)
