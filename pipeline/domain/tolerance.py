"""Tolerance: whether two money amounts agree closely enough to call them the same.

A carrier's invoice, its delivery reports and our rate card rarely agree to the last digit
(a carrier may round each part, or keep six decimals where we keep four), so a comparison
of carrier costs allows ``carriers.<name>.tolerance``: an absolute ``abs`` and a relative
``rel``. The rule is that of ``math.isclose``, in exact Decimal arithmetic:

    |a - b| <= max(abs, rel * max(|a|, |b|))

that is, the amounts agree when they are within ``abs`` OR within ``rel`` of the larger
magnitude; both edges are inclusive. With the default ``abs = 0`` and ``rel = 0`` only
equal amounts agree (``1.50`` and ``1.5`` are equal). The rule is symmetric, so it does not
matter which side is the invoice and which the expectation.
"""

from __future__ import annotations

import decimal
from decimal import Decimal

from pipeline.domain.money import require_decimal


def within(a: Decimal, b: Decimal, abs: Decimal, rel: Decimal) -> bool:
    """``|a - b| <= max(abs, rel * max(|a|, |b|))``, exactly; see the module docstring.

    Every argument must be a finite Decimal (TypeError for a float); ``abs`` and ``rel``
    must not be negative (ValueError), as a negative tolerance would disagree with itself.
    """
    require_decimal(a, "a")
    require_decimal(b, "b")
    require_decimal(abs, "abs")
    require_decimal(rel, "rel")
    if abs < 0 or rel < 0:
        raise ValueError("a tolerance is never negative")
    with decimal.localcontext() as ctx:
        # Subtraction and product kept exact however far apart the magnitudes are: an
        # edge case must not be decided by the context's 28-digit rounding.
        ctx.prec = decimal.MAX_PREC
        ctx.traps[decimal.Inexact] = True
        difference = (a - b).copy_abs()
        if difference <= abs:
            return True
        larger = max(a.copy_abs(), b.copy_abs())
        return difference <= rel * larger
