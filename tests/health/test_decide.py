"""The health rules as plain values: each threshold, each write problem, each circuit."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from pipeline.health.decide import (
    Measurements,
    OpenCircuit,
    Thresholds,
    health_reasons,
    lag_events,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LIMITS = Thresholds(
    max_lag_events=100, max_lag_seconds=60, max_dispatch_age=600, min_free_bytes=1000
)


def well(**changes: object) -> Measurements:
    base: dict[str, object] = {
        "now": NOW,
        "free_bytes": 10_000,
        "head_position": 50,
        "checkpoint_position": 50,
    }
    return Measurements(**{**base, **changes})  # type: ignore[arg-type]


def codes(m: Measurements) -> list[str]:
    return [r.code for r in health_reasons(m, LIMITS)]


def test_a_well_pipeline_has_no_reasons() -> None:
    assert codes(well()) == []


def test_a_standby_in_recovery_is_named_as_such() -> None:
    m = well(write_problem="database_in_recovery", write_detail="pg_is_in_recovery() is true")
    [reason] = health_reasons(m, LIMITS)
    assert reason.code == "database_in_recovery"
    assert "recovery" in reason.message
    assert reason.as_json()["engine_said"] == "pg_is_in_recovery() is true"


def test_every_write_problem_becomes_its_own_reason() -> None:
    for problem in ("database_locked", "database_read_only", "disk_full"):
        assert codes(well(write_problem=problem)) == [problem]


def test_free_space_under_the_threshold_is_a_full_disk() -> None:
    assert codes(well(free_bytes=999)) == ["disk_full"]
    assert codes(well(free_bytes=1000)) == []
    # Said once, even when the probe itself hit the full disk.
    assert codes(well(free_bytes=0, write_problem="disk_full")) == ["disk_full"]


def test_free_space_unknown_is_not_judged() -> None:
    assert codes(well(free_bytes=None)) == []


def test_lag_in_events_over_the_limit() -> None:
    assert codes(well(head_position=150, checkpoint_position=50)) == []
    assert codes(well(head_position=151, checkpoint_position=50)) == ["projector_lag_events"]
    assert lag_events(well(head_position=10, checkpoint_position=20)) == 0


def test_lag_in_seconds_is_the_age_of_the_oldest_unprojected_event() -> None:
    assert codes(well(oldest_unprojected_at=NOW - timedelta(seconds=60))) == []
    old = well(oldest_unprojected_at=NOW - timedelta(seconds=61))
    [reason] = health_reasons(old, LIMITS)
    assert (reason.code, reason.detail["lag_seconds"]) == ("projector_lag_seconds", 61.0)


def test_a_delivery_waiting_longer_than_max_dispatch_age() -> None:
    assert codes(well(oldest_pending_delivery_at=NOW - timedelta(seconds=600))) == []
    late = well(oldest_pending_delivery_at=NOW - timedelta(seconds=601))
    assert codes(late) == ["dispatch_backlog"]


def test_one_reason_per_open_circuit_naming_the_partner() -> None:
    m = well(
        open_circuits=(
            OpenCircuit("acme", "partner_token_invalid", NOW),
            OpenCircuit("beta", None, None),
        )
    )
    reasons = health_reasons(m, LIMITS)
    assert [(r.code, r.detail["partner"]) for r in reasons] == [
        ("circuit_open", "acme"),
        ("circuit_open", "beta"),
    ]
    assert reasons[0].as_json()["opened_at"] == "2026-11-30T12:00:00Z"


def test_unreadable_database_skips_the_rules_that_need_reads() -> None:
    m = Measurements(now=NOW, read_error="OperationalError: gone")
    assert codes(m) == ["database_unreachable"]
    both = Measurements(now=NOW, write_problem="database_unreachable", read_error="x")
    assert codes(both) == ["database_unreachable"]


def test_several_reasons_are_all_given_in_a_fixed_order() -> None:
    m = well(
        write_problem="database_read_only",
        head_position=1000,
        oldest_unprojected_at=NOW - timedelta(hours=1),
        oldest_pending_delivery_at=NOW - timedelta(hours=1),
        open_circuits=(OpenCircuit("acme", None, None),),
    )
    assert codes(m) == [
        "database_read_only",
        "projector_lag_events",
        "projector_lag_seconds",
        "dispatch_backlog",
        "circuit_open",
    ]
