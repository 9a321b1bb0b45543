"""Money: Decimal amounts and ISO 4217 currencies."""

from __future__ import annotations

from functools import lru_cache

import iso4217


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
