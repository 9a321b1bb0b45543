"""FX: converting an amount with the rate of one UTC day, and never with a guess.

A rate (an ``fx.rate`` event, docs/events.md) says that on ``day`` one unit of ``base``
is worth ``rate`` units of ``quote``. A conversion uses only the rate of the amount's own
UTC day: directly (``base`` → ``quote``: multiply) or through the inverse of the quoted
pair (``quote`` → ``base``: divide). No neighbouring day, no chain through a third
currency, no default: without that day's rate the answer is None, which the caller reports
as ``fx_missing`` while keeping the amount in its original currency.

When the log holds more than one rate for a day and pair (two sources, or a correction),
the one appended last counts: ``rate_table`` is fed in log order, so replay agrees. The
direct pair is preferred to the inverse when both exist.

Multiplication is exact. Division by a rate is not always finite, so an inverse conversion
keeps 28 significant digits (half even). Neither is rounded to minor units: that is the
caller's one rounding, if any.
"""

from __future__ import annotations

import decimal
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal

from pipeline.domain.money import require_decimal

#: Significant digits of an inverse conversion (Decimal's default precision).
INVERSE_DIGITS = 28

#: (day, base, quote) -> rate: one unit of base is worth rate units of quote on that day.
RateTable = Mapping[tuple[date, str, str], Decimal]


@dataclass(frozen=True, slots=True)
class FxRate:
    """One rate as an ``fx.rate`` event states it."""

    day: date
    base: str
    quote: str
    rate: Decimal
    source: str


def rate_table(rates: Iterable[FxRate]) -> dict[tuple[date, str, str], Decimal]:
    """The rates by (day, base, quote), given in log order: a later one replaces an earlier."""
    table: dict[tuple[date, str, str], Decimal] = {}
    for fx in rates:
        table[(fx.day, fx.base, fx.quote)] = fx.rate
    return table


def convert(
    amount: Decimal, from_ccy: str, to_ccy: str, day: date, rates: RateTable
) -> Decimal | None:
    """``amount`` in ``from_ccy`` expressed in ``to_ccy`` at ``day``'s rate, or None when
    that day has no rate for the pair either way (``fx_missing``).

    The same currency converts to itself on any day, rate or not.
    """
    require_decimal(amount)
    if isinstance(day, datetime) or not isinstance(day, date):
        # A datetime never equals a date key: it would find no rate and look like a gap.
        raise TypeError(f"day must be a date (the UTC day), not {type(day).__name__}")
    if from_ccy == to_ccy:
        return amount
    direct = rates.get((day, from_ccy, to_ccy))
    if direct is not None:
        with decimal.localcontext() as ctx:
            ctx.prec = decimal.MAX_PREC
            ctx.traps[decimal.Inexact] = True
            return amount * direct
    inverse = rates.get((day, to_ccy, from_ccy))
    if inverse is not None:
        with decimal.localcontext() as ctx:
            ctx.prec = INVERSE_DIGITS
            ctx.rounding = decimal.ROUND_HALF_EVEN
            return amount / inverse
    return None
