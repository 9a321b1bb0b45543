"""convert(): the rate of the amount's own UTC day, direct or inverse, else None."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal as D

import pytest

from pipeline.domain.fx import FxRate, convert, rate_table

DAY = date(2026, 1, 15)
RATES = rate_table(
    [
        FxRate(DAY, "EUR", "RUB", D("98.50"), "cbr"),
        FxRate(DAY, "USD", "EUR", D("0.92"), "ecb"),
    ]
)


def test_direct_rate_multiplies_exactly() -> None:
    # 2.27 EUR x 98.50 = 223.5950 RUB, every digit kept.
    assert convert(D("2.27"), "EUR", "RUB", DAY, RATES) == D("223.5950")
    assert convert(D("0.0333"), "USD", "EUR", DAY, RATES) == D("0.030636")


def test_inverse_of_the_quoted_pair_divides() -> None:
    # 197 RUB / 98.50 = 2 EUR exactly.
    assert convert(D("197"), "RUB", "EUR", DAY, RATES) == D("2")
    # 1 EUR / 0.92 = 1.086956521739130434782608696 USD (28 significant digits, half even).
    assert convert(D("1"), "EUR", "USD", DAY, RATES) == D("1.086956521739130434782608696")


def test_same_currency_needs_no_rate() -> None:
    assert convert(D("1.23"), "RUB", "RUB", date(1999, 1, 1), {}) == D("1.23")


def test_a_neighbouring_day_is_never_used() -> None:
    assert convert(D("1"), "EUR", "RUB", date(2026, 1, 14), RATES) is None
    assert convert(D("1"), "EUR", "RUB", date(2026, 1, 16), RATES) is None


def test_no_chain_through_a_third_currency() -> None:
    # USD -> EUR and EUR -> RUB exist, USD -> RUB does not: no made-up cross rate.
    assert convert(D("1"), "USD", "RUB", DAY, RATES) is None


def test_the_rate_appended_last_replaces_an_earlier_one_and_direct_beats_inverse() -> None:
    table = rate_table(
        [
            FxRate(DAY, "EUR", "RUB", D("98.50"), "cbr"),
            FxRate(DAY, "EUR", "RUB", D("99"), "cbr"),
            FxRate(DAY, "RUB", "EUR", D("0.5"), "odd"),
        ]
    )
    assert convert(D("2"), "EUR", "RUB", DAY, table) == D("198")
    assert convert(D("2"), "RUB", "EUR", DAY, table) == D("1.0")


def test_negative_and_zero_amounts_convert_too() -> None:
    assert convert(D("-1.10"), "EUR", "RUB", DAY, RATES) == D("-108.3500")
    assert convert(D("0"), "EUR", "RUB", DAY, RATES) == D("0")


def test_a_float_a_datetime_or_a_text_day_is_refused() -> None:
    with pytest.raises(TypeError):
        convert(1.0, "EUR", "RUB", DAY, RATES)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        convert(D(1), "EUR", "RUB", datetime(2026, 1, 15), RATES)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        convert(D(1), "EUR", "RUB", "2026-01-15", RATES)  # type: ignore[arg-type]
