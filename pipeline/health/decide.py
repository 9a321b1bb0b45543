"""The health rules: measurements and thresholds in, the reasons to answer 503 out.

Pure: no database, clock or network here (the time is part of the measurements), so each
rule is tested with plain values, including states that are hard to arrange for real (a
standby in recovery).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: What each write problem (``pipeline.db.backend.WRITE_PROBLEMS``) means to an operator.
WRITE_PROBLEM_TEXT = {
    "database_unreachable": "the database cannot be reached",
    "database_locked": "the database is locked: another connection holds its write lock",
    "database_read_only": "the database is read-only",
    "database_in_recovery": "PostgreSQL is in recovery (a standby): it takes no writes",
    "disk_full": "the disk the database writes to is full",
    "database_write_failed": "the database refused a probe write",
}


@dataclass(frozen=True, slots=True)
class OpenCircuit:
    partner: str
    reason: str | None
    opened_at: datetime | None


@dataclass(frozen=True, slots=True)
class Measurements:
    """What ``measure`` found at ``now``. None where it could not be read."""

    now: datetime
    #: None: the probe write went through; else a ``WRITE_PROBLEMS`` code and the detail.
    write_problem: str | None = None
    write_detail: str = ""
    #: Free bytes where the database lives (SQLite); None where not visible.
    free_bytes: int | None = None
    #: Why the reads below failed (then they are all None).
    read_error: str | None = None
    head_position: int | None = None
    checkpoint_position: int | None = None
    #: recorded_at of the first event after the checkpoint (None: nothing to project).
    oldest_unprojected_at: datetime | None = None
    #: When the oldest delivery still waiting for Altegio started waiting (None: none).
    oldest_pending_delivery_at: datetime | None = None
    open_circuits: tuple[OpenCircuit, ...] = ()


@dataclass(frozen=True, slots=True)
class Thresholds:
    max_lag_events: int
    max_lag_seconds: float
    max_dispatch_age: float
    min_free_bytes: int


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason for 503: a stable ``code`` for machines, ``message`` for people."""

    code: str
    message: str
    detail: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, **self.detail}


def lag_events(m: Measurements) -> int | None:
    """Log positions after the checkpoint (an upper bound on events: a rolled-back
    append leaves a gap in positions on PostgreSQL)."""
    if m.head_position is None or m.checkpoint_position is None:
        return None
    return max(0, m.head_position - m.checkpoint_position)


def lag_seconds(m: Measurements) -> float:
    """How long the oldest unprojected event has waited; 0 when there is none."""
    if m.oldest_unprojected_at is None:
        return 0.0
    return max(0.0, (m.now - m.oldest_unprojected_at).total_seconds())


def dispatch_age(m: Measurements) -> float:
    """How long the oldest delivery still waiting for Altegio has waited; 0 when none."""
    if m.oldest_pending_delivery_at is None:
        return 0.0
    return max(0.0, (m.now - m.oldest_pending_delivery_at).total_seconds())


def health_reasons(m: Measurements, t: Thresholds) -> list[Reason]:
    """Every reason the pipeline is unwell, in a fixed order; empty when it is well."""
    reasons: list[Reason] = []
    if m.write_problem is not None:
        text = WRITE_PROBLEM_TEXT.get(m.write_problem, "the database refused a probe write")
        reasons.append(Reason(m.write_problem, text, {"engine_said": m.write_detail}))
    if (
        m.write_problem != "disk_full"
        and m.free_bytes is not None
        and m.free_bytes < t.min_free_bytes
    ):
        reasons.append(
            Reason(
                "disk_full",
                f"{m.free_bytes} bytes free where the database lives, "
                f"under health.min_free_bytes ({t.min_free_bytes})",
                {"free_bytes": m.free_bytes, "min_free_bytes": t.min_free_bytes},
            )
        )
    if m.read_error is not None:
        if m.write_problem is None:
            reasons.append(
                Reason(
                    "database_unreachable",
                    "the health reads failed",
                    {"engine_said": m.read_error},
                )
            )
        return reasons
    events = lag_events(m)
    if events is not None and events > t.max_lag_events:
        reasons.append(
            Reason(
                "projector_lag_events",
                f"{events} events wait for the projector (health.max_lag_events "
                f"{t.max_lag_events})",
                {"lag_events": events, "max_lag_events": t.max_lag_events},
            )
        )
    seconds = lag_seconds(m)
    if seconds > t.max_lag_seconds:
        reasons.append(
            Reason(
                "projector_lag_seconds",
                f"the oldest unprojected event has waited {seconds:.0f}s "
                f"(health.max_lag_seconds {t.max_lag_seconds:g})",
                {"lag_seconds": round(seconds, 3), "max_lag_seconds": t.max_lag_seconds},
            )
        )
    age = dispatch_age(m)
    if age > t.max_dispatch_age:
        reasons.append(
            Reason(
                "dispatch_backlog",
                f"a delivery has waited {age:.0f}s for Altegio "
                f"(health.max_dispatch_age {t.max_dispatch_age:g})",
                {"oldest_seconds": round(age, 3), "max_dispatch_age": t.max_dispatch_age},
            )
        )
    for circuit in m.open_circuits:
        reasons.append(
            Reason(
                "circuit_open",
                f"partner {circuit.partner}'s circuit is open ({circuit.reason or 'refused'}): "
                "nothing is sent for it until a probe succeeds",
                {
                    "partner": circuit.partner,
                    "circuit_reason": circuit.reason,
                    "opened_at": _iso(circuit.opened_at),
                },
            )
        )
    return reasons


def _iso(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat().replace("+00:00", "Z")
