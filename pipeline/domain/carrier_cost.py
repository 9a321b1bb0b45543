"""Expected carrier cost: what a carrier's rate card says a message should cost us.

The rate card (``carriers.<name>.rates``) has the shape and the selection rules of
``billing.tariffs`` (pipeline.domain.tariffs: longest prefix, validity on ``accepted_at``,
the first in the list on a tie), so it is read through the same ``TariffSettings`` protocol
and ``select_tariff``; a rate card has no partner, channel or dispatch-type qualifiers.

``charge_on`` says what the carrier charges for:

* ``submitted``: every message it accepted, whatever became of it (rejected ones too),
  so the expectation is ``parts × price_per_part``;
* ``delivered``: only a delivered message (Altegio status 1). A message that ended
  undelivered (2, 16 or 52, the other final statuses) is expected to cost 0 in the rate's
  currency. A message not final yet (no status, 8 or 4) is expected to cost what its
  delivery would: the expectation is never lower than the eventual charge, so a margin is
  not overstated while reports are outstanding, and it falls to 0 if the message fails.

The amount is exact (``parts × price_per_part`` with no digit lost) and NOT rounded to the
currency's minor unit: carriers price parts in fractions of a cent (``0.0333``) and bill
them that way, so a carrier cost keeps its decimals; only a sale price is rounded
(pipeline.domain.money.round_money).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal, NamedTuple

from pipeline.domain.money import message_total
from pipeline.domain.status import DELIVERED, is_final
from pipeline.domain.tariffs import (
    TariffRule,
    TariffSettings,
    rules_from_settings,
    select_tariff,
)

ChargeOn = Literal["submitted", "delivered"]
CHARGE_ON: frozenset[str] = frozenset({"submitted", "delivered"})


class CarrierCost(NamedTuple):
    """An amount and its ISO 4217 currency; the amount keeps every decimal."""

    amount: Decimal
    currency: str


def expected_carrier_cost(
    rates: Sequence[TariffSettings],
    charge_on: ChargeOn,
    phone: str,
    accepted_at: datetime,
    parts: int,
    status: int | None,
) -> CarrierCost | None:
    """What the carrier should charge for this message, or None when no rate applies
    (no rate for the destination on that day, or a phone that is not a number).

    See the module docstring for ``charge_on`` and the statuses. Raises TariffError for a
    bad rate (the config model refuses it first) and ValueError for an unknown
    ``charge_on`` or a naive ``accepted_at``. A caller pricing many messages builds the
    rules once (``rules_from_settings``) and calls ``expected_cost_by_rules``.
    """
    return expected_cost_by_rules(
        rules_from_settings(rates), charge_on, phone, accepted_at, parts, status
    )


def expected_cost_by_rules(
    rules: Sequence[TariffRule],
    charge_on: ChargeOn,
    phone: str,
    accepted_at: datetime,
    parts: int,
    status: int | None,
) -> CarrierCost | None:
    """``expected_carrier_cost`` over rules already validated."""
    if charge_on not in CHARGE_ON:
        raise ValueError(f"charge_on must be submitted or delivered, not {charge_on!r}")
    rule = select_tariff(
        rules,
        partner="",
        channel="",
        dispatch_type=None,
        phone=phone,
        accepted_at=accepted_at,
    )
    if rule is None:
        return None
    total = message_total(parts, rule.price_per_part)
    if charge_on == "delivered" and is_final(status) and status != DELIVERED:
        return CarrierCost(Decimal(0), rule.currency)
    return CarrierCost(total, rule.currency)
