"""within(a, b, abs, rel): |a - b| <= max(abs, rel * max(|a|, |b|)), edges inclusive."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from pipeline.domain.tolerance import within

ZERO = D(0)


def test_default_exact_tolerance_accepts_only_equal_amounts() -> None:
    assert within(D("1.50"), D("1.5"), ZERO, ZERO)
    assert within(ZERO, D("-0"), ZERO, ZERO)
    assert not within(D("1.50"), D("1.51"), ZERO, ZERO)
    assert not within(D("0.0333"), D("0.03330001"), ZERO, ZERO)


def test_one_minor_unit_inside_the_absolute_tolerance_agrees() -> None:
    # abs 0.02 RUB: a difference of one kopek is inside.
    assert within(D("10.00"), D("10.01"), D("0.02"), ZERO)


def test_exactly_at_the_absolute_tolerance_agrees_and_just_beyond_does_not() -> None:
    assert within(D("10.00"), D("10.02"), D("0.02"), ZERO)
    assert within(D("10.02"), D("10.00"), D("0.02"), ZERO)
    assert not within(D("10.00"), D("10.021"), D("0.02"), ZERO)
    assert not within(D("10.00"), D("10.0200000000000000000000000001"), D("0.02"), ZERO)


def test_exactly_at_the_relative_tolerance_agrees_and_just_beyond_does_not() -> None:
    # rel 1 % of the larger magnitude: 1 % of 100.00 is 1.00.
    assert within(D("99.00"), D("100.00"), ZERO, D("0.01"))
    assert within(D("100.00"), D("99.00"), ZERO, D("0.01"))
    # 1 % of 100.001 is 1.00001 < 1.001: beyond.
    assert not within(D("99.000"), D("100.001"), ZERO, D("0.01"))
    # The larger magnitude, not the smaller: 1 % of 99 (0.99) alone would refuse this.
    assert within(D("99"), D("100"), ZERO, D("0.01"))
    assert not within(D("98.99"), D("100"), ZERO, D("0.01"))


def test_either_bound_is_enough() -> None:
    # abs 0.05 allows 0.05; rel 10 % of 0.40 allows 0.04: the larger (abs) decides.
    assert within(D("0.35"), D("0.40"), D("0.05"), D("0.1"))
    # rel 10 % of 10 allows 1.00; abs allows 0.05: the larger (rel) decides.
    assert within(D("9.00"), D("10.00"), D("0.05"), D("0.1"))
    assert not within(D("8.99"), D("10.00"), D("0.05"), D("0.1"))


def test_negative_amounts_use_magnitudes() -> None:
    # A credit note against its expectation: -100 and -99 are 1 apart, 1 % of 100.
    assert within(D("-100"), D("-99"), ZERO, D("0.01"))
    assert not within(D("-100"), D("-98.99"), ZERO, D("0.01"))
    # Opposite signs: 0.10 and -0.10 are 0.20 apart.
    assert within(D("0.10"), D("-0.10"), D("0.20"), ZERO)
    assert not within(D("0.10"), D("-0.10"), D("0.19"), ZERO)
    # ...and relative 100 % of 0.10 is only 0.10: a sign flip is never "close" by rel alone.
    assert not within(D("0.10"), D("-0.10"), ZERO, D("1"))


def test_zero_against_zero_and_against_an_amount() -> None:
    assert within(ZERO, ZERO, ZERO, D("0.5"))
    # Relative tolerance of anything against 0 is a fraction of the amount itself.
    assert not within(ZERO, D("0.01"), ZERO, D("0.5"))
    assert within(ZERO, D("0.01"), D("0.01"), ZERO)


def test_amounts_far_apart_in_magnitude_are_compared_exactly() -> None:
    big = D("1000000000000000000000000000000")  # 10^30: beyond 28 significant digits
    nearly = D("1000000000000000000000000000000.001")
    assert not within(big, nearly, ZERO, ZERO)
    assert within(big, nearly, D("0.001"), ZERO)
    assert not within(big, nearly, D("0.000999"), ZERO)


@pytest.mark.parametrize("bad", [0.1, 1, "0.1"])
def test_anything_but_a_decimal_is_refused(bad: object) -> None:
    with pytest.raises(TypeError):
        within(D(1), bad, ZERO, ZERO)  # type: ignore[arg-type]


def test_a_negative_tolerance_is_refused() -> None:
    with pytest.raises(ValueError):
        within(D(1), D(1), D("-0.01"), ZERO)
    with pytest.raises(ValueError):
        within(D(1), D(1), ZERO, D("-0.01"))
