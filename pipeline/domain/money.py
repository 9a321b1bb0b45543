"""Money: Decimal amounts and ISO 4217 currencies, and the one rounding of a message price.

Finance reconciles to the cent, so an amount is a ``Decimal`` from the config file to the
Altegio payload: a float is refused with TypeError wherever one could slip in. A message
total is ``parts × price_per_part`` computed exactly and rounded once, to the currency's
minor unit, so that the sum over messages is explainable line by line.
"""

from __future__ import annotations

import decimal
from collections.abc import Set
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING

import iso4217

if TYPE_CHECKING:
    from pipeline.domain.tariffs import TariffRule

#: The rounding modes ``billing.rounding`` may name. ``down`` and ``up`` are toward and
#: away from zero (prices are never negative, so that is also toward and away from -∞/+∞).
ROUNDINGS: dict[str, str] = {
    "half_up": decimal.ROUND_HALF_UP,
    "half_even": decimal.ROUND_HALF_EVEN,
    "down": decimal.ROUND_DOWN,
    "up": decimal.ROUND_UP,
}

#: Altegio statuses that are never charged unless ``billing.non_chargeable_statuses`` says
#: otherwise: 16 rejected by the operator, 52 not enough funds.
DEFAULT_NON_CHARGEABLE: frozenset[int] = frozenset({16, 52})


@lru_cache(maxsize=512)
def currency_exponent(code: str) -> int | None:
    """Minor-unit digits of an ISO 4217 currency (2 for EUR, 0 for JPY); None if unknown."""
    if not isinstance(code, str) or len(code) != 3 or not code.isalpha() or not code.isupper():
        return None
    try:
        currency = iso4217.Currency(code)
    except ValueError:
        return None
    exponent = currency.exponent
    return 0 if exponent is None else int(exponent)


def require_decimal(value: object, what: str = "amount") -> Decimal:
    """``value`` if it is a finite Decimal; TypeError for a float (or anything else)."""
    if not isinstance(value, Decimal):
        hint = " (a float cannot hold money exactly)" if isinstance(value, float) else ""
        raise TypeError(f"{what} must be a Decimal, not {type(value).__name__}{hint}")
    if not value.is_finite():
        raise ValueError(f"{what} must be a finite number, not {value}")
    return value


def round_money(amount: Decimal, currency: str, rounding: str = "half_up") -> Decimal:
    """``amount`` rounded to ``currency``'s minor units (RUB 4.535 -> 4.54 half-up).

    The result always carries exactly the currency's number of decimal places (``0`` is
    ``0.00`` in RUB), so equal amounts have equal text in the database and in payload
    hashes.
    """
    require_decimal(amount)
    exponent = currency_exponent(currency)
    if exponent is None:
        raise ValueError(f"unknown ISO 4217 currency {currency!r}")
    mode = ROUNDINGS.get(rounding)
    if mode is None:
        raise ValueError(f"unknown rounding {rounding!r}: expected one of {', '.join(ROUNDINGS)}")
    with decimal.localcontext() as ctx:
        # Enough digits that quantize never fails for a large amount: it must round to the
        # minor unit, never to the context's precision.
        ctx.prec = max(28, amount.adjusted() + exponent + 2)
        return amount.quantize(Decimal(1).scaleb(-exponent), rounding=mode)


def message_total(parts: int, price_per_part: Decimal) -> Decimal:
    """``parts × price_per_part``, exact: no digit is lost before the one rounding."""
    _require_parts(parts)
    require_decimal(price_per_part, "price_per_part")
    with decimal.localcontext() as ctx:
        ctx.prec = len(price_per_part.as_tuple().digits) + len(str(parts)) + 1
        ctx.traps[decimal.Inexact] = True  # a bug here must fail loudly, not round twice
        return price_per_part * parts


@dataclass(frozen=True, slots=True)
class Quote:
    """What a message costs the partner: the Altegio ``payment_sum`` and ``currency_iso``.

    ``payment_sum`` None means no tariff applies: the message has no price (NULL, not 0)
    and is not sent to Altegio until it has one. ``basis`` says why the amount is what it
    is: ``tariff``, ``free``, ``non_chargeable`` or ``no_tariff``.
    """

    payment_sum: Decimal | None
    currency_iso: str | None
    basis: str = "tariff"


NO_TARIFF = Quote(payment_sum=None, currency_iso=None, basis="no_tariff")


def price_message(
    *,
    parts: int,
    tariff: TariffRule | None,
    free: bool,
    status: int | None,
    non_chargeable: Set[int],
    rounding: str = "half_up",
) -> Quote:
    """The price of a message of ``parts`` parts under ``tariff``, in its status.

    A free (bonus) message and one whose status is non-chargeable cost 0 in the tariff's
    currency: still a price, so Altegio is told 0 rather than nothing. Without a tariff
    there is no price at all, whatever else holds.
    """
    _require_parts(parts)
    if tariff is None:
        return NO_TARIFF
    if free:
        return Quote(round_money(Decimal(0), tariff.currency, rounding), tariff.currency, "free")
    if status is not None and status in non_chargeable:
        zero = round_money(Decimal(0), tariff.currency, rounding)
        return Quote(zero, tariff.currency, "non_chargeable")
    total = message_total(parts, tariff.price_per_part)
    return Quote(round_money(total, tariff.currency, rounding), tariff.currency, "tariff")


def _require_parts(parts: object) -> None:
    if not isinstance(parts, int) or isinstance(parts, bool):
        raise TypeError(f"parts must be an int, not {type(parts).__name__}")
    if parts < 1:
        raise ValueError(f"parts must be at least 1, not {parts}")


#: The fixed scale of carrier costs, margins and amounts at stake in integer columns:
#: units of 10^-9 ("nano"), fine enough for every carrier's quoted price.
NANO_EXPONENT = 9
#: The integer columns are 64-bit: a count of units beyond this is not stored (NULL).
UNITS_LIMIT = 2**63 - 1


def to_units(amount: Decimal, exponent: int) -> int | None:
    """``amount`` as an integer count of 10^-``exponent`` units, exactly, or None when it
    has a digit finer than that (or more units than a 64-bit column holds): the integer
    column beside the decimal text, which SQL can sum exactly on every engine. Never
    rounds (a None is flagged by the caller, not hidden).
    """
    require_decimal(amount)
    if amount and amount.adjusted() + exponent > 18:
        return None  # beyond a 64-bit column (and never an exponent worth expanding)
    sign, digits, exp = amount.as_tuple()
    assert isinstance(exp, int)  # finite, by require_decimal
    shift = exp + exponent
    if shift >= 0:
        units = int("".join(map(str, digits)) or "0") * 10**shift
    else:
        # Only trailing zeros may be dropped: 1.2300000000 is 1230000000 nano, 1E-10 is None.
        kept, dropped = digits[: len(digits) + shift], digits[len(digits) + shift :]
        if any(dropped):
            return None
        units = int("".join(map(str, kept)) or "0")
    if units > UNITS_LIMIT:
        return None
    return -units if sign else units


@lru_cache(maxsize=4096)
def to_nano(amount: Decimal) -> int | None:
    """``to_units(amount, NANO_EXPONENT)``, memoised (a few costs cover most messages)."""
    return to_units(amount, NANO_EXPONENT)


@lru_cache(maxsize=4096)
def to_minor(amount: Decimal, currency: str) -> int | None:
    """``amount`` in ``currency``'s minor units exactly (2.27 RUB -> 227); None for an
    unknown currency or a digit finer than its minor unit."""
    exponent = currency_exponent(currency)
    return None if exponent is None else to_units(amount, exponent)
