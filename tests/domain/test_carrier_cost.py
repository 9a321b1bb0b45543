"""expected_carrier_cost: the rate card chosen as tariffs are, times parts, by charge_on."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal as D

import pytest

from pipeline.config import CarrierRate
from pipeline.domain.carrier_cost import CarrierCost, expected_carrier_cost, expected_cost_by_rules
from pipeline.domain.tariffs import rules_from_settings

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)
MOSCOW = "+79161234567"
BERLIN = "+4915112345678"


def rate(prefix: str, price: str, **window: str) -> CarrierRate:
    """A rate as the config file gives it: quoted texts, validated by the config model."""
    return CarrierRate.model_validate(
        {"prefix": prefix, "price_per_part": price, "currency": "RUB", **window}
    )


RATES = [
    rate("+7", "0.0333"),
    rate("+7916", "0.0411"),
    # From 2026-02-01 a second +7916 rate also applies; the first written keeps the tie.
    rate("+7916", "0.05", valid_from="2026-02-01T00:00:00Z"),
]


def cost(
    phone: str = MOSCOW,
    parts: int = 1,
    status: int | None = 1,
    charge_on: str = "submitted",
    at: datetime = T0,
) -> CarrierCost | None:
    return expected_carrier_cost(RATES, charge_on, phone, at, parts, status)  # type: ignore[arg-type]


def test_longest_prefix_times_parts_kept_exact_not_rounded() -> None:
    # +7916 beats +7: 3 parts x 0.0411 = 0.1233 RUB, not rounded to 0.12.
    assert cost(parts=3) == CarrierCost(D("0.1233"), "RUB")
    # +7495 only matches +7: 2 x 0.0333 = 0.0666.
    assert cost(phone="+74951234567", parts=2) == CarrierCost(D("0.0666"), "RUB")


def test_a_tie_goes_to_the_rate_written_first() -> None:
    # From 2026-02-01 both +7916 entries apply and have the same prefix length: the first
    # written (0.0411) wins, as for billing.tariffs: 2 x 0.0411 = 0.0822.
    at_change = datetime(2026, 2, 1, tzinfo=UTC)
    assert cost(parts=2, at=at_change) == CarrierCost(D("0.0822"), "RUB")


def test_validity_is_judged_on_accepted_at() -> None:
    rates = [
        rate("+7", "1", valid_to="2026-02-01T00:00:00Z"),
        rate("+7", "2", valid_from="2026-02-01T00:00:00Z"),
    ]
    jan = datetime(2026, 1, 31, 23, 59, 59, tzinfo=UTC)
    feb = datetime(2026, 2, 1, tzinfo=UTC)
    assert expected_carrier_cost(rates, "submitted", MOSCOW, jan, 3, 1) == (D("3"), "RUB")
    assert expected_carrier_cost(rates, "submitted", MOSCOW, feb, 3, 1) == (D("6"), "RUB")


def test_no_rate_for_the_destination_is_none_not_zero() -> None:
    assert cost(phone=BERLIN) is None
    assert cost(phone=BERLIN, status=2, charge_on="delivered") is None
    assert cost(phone="not a number") is None


@pytest.mark.parametrize("status", [1, 2, 16, 52, 4, 8, None])
def test_charge_on_submitted_expects_the_charge_whatever_the_status(status: int | None) -> None:
    assert cost(parts=2, status=status) == CarrierCost(D("0.0822"), "RUB")


@pytest.mark.parametrize("status", [2, 16, 52])
def test_charge_on_delivered_expects_zero_for_a_final_undelivered_message(status: int) -> None:
    assert cost(parts=2, status=status, charge_on="delivered") == CarrierCost(D(0), "RUB")


def test_charge_on_delivered_expects_the_charge_when_delivered() -> None:
    assert cost(parts=2, status=1, charge_on="delivered") == CarrierCost(D("0.0822"), "RUB")


@pytest.mark.parametrize("status", [None, 4, 8])
def test_charge_on_delivered_expects_the_charge_while_not_final(status: int | None) -> None:
    assert cost(parts=2, status=status, charge_on="delivered") == CarrierCost(D("0.0822"), "RUB")


def test_an_unknown_charge_on_is_refused() -> None:
    with pytest.raises(ValueError):
        cost(charge_on="billed")


def test_rules_built_once_give_what_the_settings_give() -> None:
    rules = rules_from_settings(RATES)
    for status in (1, 2, None):
        for charge_on in ("submitted", "delivered"):
            assert expected_cost_by_rules(
                rules, charge_on, MOSCOW, T0, 2, status
            ) == expected_carrier_cost(RATES, charge_on, MOSCOW, T0, 2, status)
