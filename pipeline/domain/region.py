"""The country of a phone number: the ISO 3166 region ``phonenumbers`` gives it.

Reports group margins by country; the region is a function of the number alone, so it is
derived once per number (memoised) when the projector writes a message's row.
"""

from __future__ import annotations

from functools import lru_cache

import phonenumbers


@lru_cache(maxsize=65536)
def country_of(phone: str | None) -> str | None:
    """The ISO region of an E.164 number ("RU" for +7 916 ...), or None when the number is
    not one ``phonenumbers`` can place (unparseable, or a code shared with no region)."""
    if not phone:
        return None
    try:
        number = phonenumbers.parse(phone, None)
    except phonenumbers.NumberParseException:
        return None
    region = phonenumbers.region_code_for_number(number)
    return region if region and region != "ZZ" else None
