"""The URL filters: periods, stepping, and the errors a bad one gets (pure, no database)."""

from __future__ import annotations

from datetime import date
from urllib.parse import parse_qs

import pytest

from pipeline.dashboard.filters import FilterError, parse_filters

TODAY = date(2026, 10, 14)  # a Wednesday


def test_periods_cover_the_day_the_monday_to_sunday_week_and_the_month() -> None:
    day = parse_filters({"period": "day"}, TODAY)
    assert (day.first, day.after) == (date(2026, 10, 14), date(2026, 10, 15))
    week = parse_filters({"period": "week"}, TODAY)
    assert (week.first, week.last) == (date(2026, 10, 12), date(2026, 10, 18))
    month = parse_filters({}, TODAY)
    assert (month.period, month.first, month.after) == ("month", date(2026, 10, 1),
                                                         date(2026, 11, 1))  # fmt: skip
    custom = parse_filters({"period": "custom", "from": "2026-09-30", "to": "2026-10-02"}, TODAY)
    assert (custom.first, custom.after, len(custom.days)) == (
        date(2026, 9, 30),
        date(2026, 10, 3),
        3,
    )


def test_stepping_keeps_the_kind_of_period() -> None:
    december = parse_filters({"date": "2026-12-31"}, TODAY)
    assert december.shifted(1).first == date(2027, 1, 1)
    assert december.shifted(-12).first == date(2025, 12, 1)
    week = parse_filters({"period": "week", "date": "2026-10-14"}, TODAY)
    assert week.shifted(-1).first == date(2026, 10, 5)
    custom = parse_filters({"period": "custom", "from": "2026-10-01", "to": "2026-10-10"}, TODAY)
    assert (custom.shifted(1).first, custom.shifted(1).last) == (
        date(2026, 10, 11),
        date(2026, 10, 20),
    )


def test_the_query_string_round_trips() -> None:
    wanted = {"period": "custom", "from": "2026-10-01", "to": "2026-10-10",
              "partner": '<a href="x">&', "carrier": "mts", "currency": "RUB"}  # fmt: skip
    f = parse_filters(wanted, TODAY)
    again = parse_filters({k: v[0] for k, v in parse_qs(f.query()).items()}, TODAY)
    assert again == f
    assert "partner" not in parse_qs(f.query(partner=None))


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ({"period": "quarter"}, "period: one of"),
        ({"date": "14.10.2026"}, "date: not a day"),
        ({"currency": "EURO"}, "currency: three capital letters"),
        ({"partner": "x" * 201}, "partner: longer than 200"),
        ({"period": "custom", "from": "2026-10-02", "to": "2026-10-01"}, "must not be before"),
        ({"period": "custom", "from": "2025-01-01", "to": "2026-12-31"}, "at most 366 days"),
        ({"period": "custom", "to": "2026-10-01"}, "needs from and to"),
    ],
)
def test_a_bad_filter_says_which_and_how(query: dict[str, str], words: str) -> None:
    with pytest.raises(FilterError, match=words):
        parse_filters(query, TODAY)
