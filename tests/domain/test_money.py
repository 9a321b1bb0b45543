"""Money: one rounding to the currency's minor unit, zero-priced cases, no floats."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.config import BillingSettings
from pipeline.domain.money import (
    DEFAULT_NON_CHARGEABLE,
    ROUNDINGS,
    Quote,
    currency_exponent,
    message_total,
    price_message,
    round_money,
)
from pipeline.domain.tariffs import TariffRule

RUB = TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")


def quote(parts: int = 2, tariff: TariffRule | None = RUB, **kwargs: object) -> Quote:
    args: dict[str, object] = {"free": False, "status": 1, "non_chargeable": DEFAULT_NON_CHARGEABLE}
    return price_message(parts=parts, tariff=tariff, **(args | kwargs))  # type: ignore[arg-type]


def test_currency_exponent_from_iso4217() -> None:
    assert currency_exponent("RUB") == 2
    assert currency_exponent("JPY") == 0
    assert currency_exponent("KWD") == 3
    assert currency_exponent("XYZ") is None
    assert currency_exponent("rub") is None


@pytest.mark.parametrize(
    ("amount", "rounding", "expected"),
    [
        ("4.535", "half_up", "4.54"),
        ("4.545", "half_even", "4.54"),
        ("4.535", "half_even", "4.54"),
        ("4.539", "down", "4.53"),
        ("4.531", "up", "4.54"),
        ("4.53", "up", "4.53"),
        ("4", "half_up", "4.00"),
        ("0", "half_up", "0.00"),
    ],
)
def test_round_money_to_minor_units(amount: str, rounding: str, expected: str) -> None:
    result = round_money(Decimal(amount), "RUB", rounding)
    assert result == Decimal(expected)
    assert str(result) == expected  # always exactly the currency's places


def test_round_money_follows_the_currency_exponent() -> None:
    assert str(round_money(Decimal("1.5"), "JPY")) == "2"
    assert str(round_money(Decimal("1.23456"), "KWD")) == "1.235"
    assert str(round_money(Decimal("12345678901234567890123456789.005"), "EUR")) == (
        "12345678901234567890123456789.01"
    )


def test_round_money_refuses_floats_and_unknown_names() -> None:
    with pytest.raises(TypeError, match="float"):
        round_money(0.1, "RUB")  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        round_money(1, "RUB")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="currency"):
        round_money(Decimal(1), "XYZ")
    with pytest.raises(ValueError, match="rounding"):
        round_money(Decimal(1), "RUB", "banker")
    with pytest.raises(ValueError, match="finite"):
        round_money(Decimal("NaN"), "RUB")


def test_rounding_modes_are_the_config_choices() -> None:
    field = BillingSettings.model_fields["rounding"]
    assert set(field.annotation.__args__) == set(ROUNDINGS)  # type: ignore[union-attr]
    assert BillingSettings().non_chargeable_statuses == sorted(DEFAULT_NON_CHARGEABLE)


def test_price_is_parts_times_price_per_part() -> None:
    assert quote(parts=2) == Quote(Decimal("4.54"), "RUB", "tariff")


def test_total_is_rounded_once_not_per_part() -> None:
    third = TariffRule(prefix="+7", price_per_part=Decimal("0.0333"), currency="RUB")
    # Per part 0.0333 would round to 0.03, three of them to 0.09; the total 0.0999 is 0.10.
    assert quote(parts=3, tariff=third).payment_sum == Decimal("0.10")


def test_total_is_exact_before_rounding_even_beyond_28_digits() -> None:
    price = Decimal("0.0050000000000000000000000000001")  # 32 significant digits
    assert message_total(7, price) == Decimal("0.0350000000000000000000000000007")
    tariff = TariffRule(prefix="+7", price_per_part=price, currency="RUB")
    # 0.035000…7 is above the half: half_up and half_even both give 0.04.
    assert quote(parts=7, tariff=tariff, rounding="half_even").payment_sum == Decimal("0.04")


def test_configured_rounding_applies() -> None:
    tariff = TariffRule(prefix="+7", price_per_part=Decimal("0.005"), currency="RUB")
    assert quote(parts=1, tariff=tariff).payment_sum == Decimal("0.01")
    assert quote(parts=1, tariff=tariff, rounding="half_even").payment_sum == Decimal("0.00")
    assert quote(parts=1, tariff=tariff, rounding="down").payment_sum == Decimal("0.00")
    assert quote(parts=3, tariff=tariff, rounding="up").payment_sum == Decimal("0.02")


def test_free_message_costs_zero_in_the_tariff_currency() -> None:
    assert quote(free=True) == Quote(Decimal("0.00"), "RUB", "free")


@pytest.mark.parametrize("status", [16, 52])
def test_non_chargeable_status_costs_zero(status: int) -> None:
    assert quote(status=status) == Quote(Decimal("0.00"), "RUB", "non_chargeable")


@pytest.mark.parametrize("status", [None, 1, 2, 4, 8])
def test_other_statuses_are_charged(status: int | None) -> None:
    assert quote(status=status).payment_sum == Decimal("4.54")


def test_non_chargeable_set_is_the_configured_one() -> None:
    assert quote(status=16, non_chargeable=frozenset({2})).payment_sum == Decimal("4.54")
    assert quote(status=2, non_chargeable=frozenset({2})).payment_sum == Decimal("0.00")


def test_no_tariff_is_no_price_not_zero() -> None:
    for kwargs in ({}, {"free": True}, {"status": 16}):
        result = quote(tariff=None, **kwargs)
        assert result == Quote(None, None, "no_tariff")
        assert result.payment_sum is None


def test_zero_in_a_currency_without_minor_units() -> None:
    yen = TariffRule(prefix="+81", price_per_part=Decimal("3"), currency="JPY")
    assert quote(tariff=yen, free=True) == Quote(Decimal("0"), "JPY", "free")
    assert str(quote(tariff=yen).payment_sum) == "6"


def test_floats_and_bad_parts_are_refused() -> None:
    float_tariff = TariffRule(prefix="+7", price_per_part=0.1, currency="RUB")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="float"):
        quote(tariff=float_tariff)
    with pytest.raises(TypeError, match="float"):
        message_total(2, 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        quote(parts=2.0)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        quote(parts=True)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="at least 1"):
        quote(parts=0)


_PRICES = st.decimals(min_value=0, max_value=1000, places=6, allow_nan=False)


@given(st.integers(min_value=1, max_value=10_000), _PRICES, st.sampled_from(sorted(ROUNDINGS)))
def test_price_is_within_one_minor_unit_of_the_exact_total(
    parts: int, price: Decimal, rounding: str
) -> None:
    tariff = TariffRule(prefix="+7", price_per_part=price, currency="RUB")
    result = quote(parts=parts, tariff=tariff, rounding=rounding).payment_sum
    assert result is not None
    assert result.as_tuple().exponent == -2
    assert abs(result - price * parts) < Decimal("0.01")
    if rounding == "down":
        assert result <= price * parts
    if rounding == "up":
        assert result >= price * parts


@given(st.integers(min_value=1, max_value=50), _PRICES)
def test_price_never_falls_as_parts_rise(parts: int, price: Decimal) -> None:
    tariff = TariffRule(prefix="+7", price_per_part=price, currency="RUB")
    low, high = quote(parts=parts, tariff=tariff), quote(parts=parts + 1, tariff=tariff)
    assert low.payment_sum is not None
    assert high.payment_sum is not None
    assert high.payment_sum >= low.payment_sum


# -- integer units beside the decimal text --------------------------------------------------


def test_to_units_is_exact_and_keeps_the_sign() -> None:
    from pipeline.domain.money import to_minor, to_nano, to_units

    assert to_units(Decimal("2.27"), 2) == 227
    assert to_units(Decimal("-12.345"), 9) == -12_345_000_000
    assert to_units(Decimal("1E+3"), 2) == 100_000
    assert to_nano(Decimal("0.0333")) == 33_300_000
    assert to_minor(Decimal("5"), "JPY") == 5
    assert to_minor(Decimal("2.270"), "RUB") == 227


def test_trailing_zeros_beyond_the_scale_are_no_loss() -> None:
    from pipeline.domain.money import to_nano

    assert to_nano(Decimal("1.2300000000000")) == 1_230_000_000
    assert to_nano(Decimal("0E-15")) == 0


def test_a_finer_digit_is_never_rounded() -> None:
    from pipeline.domain.money import to_minor, to_nano

    assert to_nano(Decimal("0.0000000001")) is None
    assert to_nano(Decimal("1.5E-9")) is None
    assert to_minor(Decimal("2.275"), "RUB") is None
    assert to_minor(Decimal("1"), "ZZZ") is None  # no minor unit known: nothing invented


def test_more_units_than_a_64_bit_column_holds_are_not_stored() -> None:
    from pipeline.domain.money import to_nano

    assert to_nano(Decimal("9223372036.854775807")) == 2**63 - 1
    assert to_nano(Decimal("9223372036.854775808")) is None
    assert to_nano(Decimal("1E+400")) is None


def test_floats_are_refused_by_the_unit_conversion() -> None:
    from pipeline.domain.money import to_units

    with pytest.raises(TypeError):
        to_units(0.1, 9)  # type: ignore[arg-type]
