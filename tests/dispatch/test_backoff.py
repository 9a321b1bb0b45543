"""Retry arithmetic: full-jitter backoff and both forms of Retry-After."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from pipeline.dispatch.backoff import backoff_delay, parse_retry_after, retry_delay

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize("attempt", [0, 1, 2, 5, 10])
def test_backoff_stays_within_the_full_jitter_window(attempt: int) -> None:
    rng = random.Random(7)
    ceiling = min(3600.0, 5.0 * 2**attempt)
    delays = [backoff_delay(attempt, base=5.0, cap=3600.0, rng=rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # Full jitter spreads over the whole window, not only its top.
    assert min(delays) < ceiling * 0.05
    assert max(delays) > ceiling * 0.95


def test_backoff_is_capped_even_for_absurd_attempt_counts() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(10_000, base=5.0, cap=60.0, rng=rng) for _ in range(500)]
    assert all(0.0 <= d <= 60.0 for d in delays)
    assert max(delays) > 55.0


def test_backoff_is_deterministic_for_a_seeded_rng() -> None:
    first = [backoff_delay(3, base=1.0, cap=100.0, rng=random.Random(42)) for _ in range(3)]
    again = [backoff_delay(3, base=1.0, cap=100.0, rng=random.Random(42)) for _ in range(3)]
    assert first == again


def test_backoff_rejects_a_negative_attempt() -> None:
    with pytest.raises(ValueError):
        backoff_delay(-1, base=1.0, cap=10.0, rng=random.Random(0))


@pytest.mark.parametrize(
    ("value", "expected"),
    [("120", 120.0), (" 7 ", 7.0), ("0", 0.0), ("-5", 0.0)],
)
def test_retry_after_delay_seconds(value: str, expected: float) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_retry_after_imf_fixdate_in_the_future() -> None:
    assert parse_retry_after("Sun, 01 Mar 2026 12:01:30 GMT", NOW) == 90.0


def test_retry_after_date_with_an_offset_is_compared_in_utc() -> None:
    # 14:00 at +02:00 is 12:00 UTC, i.e. now.
    assert parse_retry_after("Sun, 01 Mar 2026 14:00:10 +0200", NOW) == 10.0


def test_retry_after_obsolete_rfc850_and_asctime_forms() -> None:
    assert parse_retry_after("Sunday, 01-Mar-26 12:00:30 GMT", NOW) == 30.0
    # asctime carries no zone: HTTP-dates are GMT.
    assert parse_retry_after("Sun Mar  1 12:00:45 2026", NOW) == 45.0


def test_retry_after_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT", NOW) == 0.0


def test_retry_after_now_in_another_zone_is_the_same_instant() -> None:
    now_plus2 = NOW.astimezone(timezone(timedelta(hours=2)))
    assert parse_retry_after("Sun, 01 Mar 2026 12:00:20 GMT", now_plus2) == 20.0


@pytest.mark.parametrize(
    "value", [None, "", "   ", "soon", "1.5", "12s", "Sun, 99 Foo 2026 25:61:00 GMT", "+5"]
)
def test_retry_after_garbage_is_none(value: str | None) -> None:
    assert parse_retry_after(value, NOW) is None


def test_retry_after_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        parse_retry_after("5", datetime(2026, 3, 1, 12, 0, 0))


def test_retry_delay_honours_retry_after_exactly() -> None:
    assert retry_delay(0, 42.0, base=5.0, cap=3600.0, rng=random.Random(0)) == 42.0
    assert retry_delay(9, 0.0, base=5.0, cap=3600.0, rng=random.Random(0)) == 0.0


def test_retry_delay_caps_a_huge_retry_after() -> None:
    assert retry_delay(0, 86_400.0 * 7, base=5.0, cap=3600.0, rng=random.Random(0)) == 3600.0


def test_retry_delay_without_retry_after_is_the_jittered_backoff() -> None:
    expected = backoff_delay(4, base=5.0, cap=3600.0, rng=random.Random(3))
    assert retry_delay(4, None, base=5.0, cap=3600.0, rng=random.Random(3)) == expected
