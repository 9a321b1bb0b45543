"""How many SMS parts (segments) a text costs.

A message is billed per part, so the count must match what a carrier would send. The rules
are those of 3GPP TS 23.038 (GSM 03.38) and TS 23.040 concatenation:

* a text made only of the GSM 7-bit default alphabet is sent in septets; the characters of
  the default extension table (``^ { } \\ [ ~ ] | €`` and form feed) are an escape plus a
  character, so they cost 2 septets. One part holds 160 septets; a concatenated message
  loses 7 septets per part to the user-data header, leaving 153;
* any other character forces UCS-2, counted in UTF-16 code units: 70 in one part, 67 per
  part when concatenated. A character outside the Basic Multilingual Plane (most emoji) is
  a surrogate pair, 2 units;
* an escape pair or a surrogate pair is never split across two parts: a phone would show
  garbage, so a segmenter starts a new part instead and the previous one stays short;
* WhatsApp has no segments: a message is 1 part whatever its length.

National language shift tables (Turkish, Spanish, Portuguese, Indian scripts) are not
used: our carriers send the default alphabet or UCS-2, and counting otherwise would
underbill. The escape character itself (0x1B) is not a character a text can hold.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The GSM 03.38 default alphabet, in code order 0x00..0x7F, without 0x1B (ESCAPE, which
#: introduces the extension table and is not a character of its own). 0x09 is the capital
#: C with cedilla, as in the ETSI table.
GSM7_BASIC: frozenset[str] = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅå"
    "Δ_ΦΓΛΩΠΨΣΘΞ"  # 0x10..0x1A
    "ÆæßÉ"  # 0x1C..0x1F
    " !\"#¤%&'()*+,-./"
    "0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNO"
    "PQRSTUVWXYZÄÖÑÜ§"
    "¿abcdefghijklmno"
    "pqrstuvwxyzäöñüà"
)

#: The default extension table: each costs an escape septet plus its own (2 septets).
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")

Encoding = Literal["gsm7", "ucs2"]

GSM7_SINGLE = 160
GSM7_MULTI = 153
UCS2_SINGLE = 70
UCS2_MULTI = 67

CHANNELS = ("sms", "whatsapp")

_GSM7_ALL = GSM7_BASIC | GSM7_EXTENSION


@dataclass(frozen=True, slots=True)
class PartCount:
    """The parts a text costs, the encoding it goes in and its length in that encoding."""

    parts: int  # >= 1 (an empty text is 1 part)
    encoding: Encoding
    units: int  # septets (gsm7, extension characters count 2) or UTF-16 code units (ucs2)


def count_parts(text: str, channel: str = "sms") -> PartCount:
    """Parts, encoding and length of ``text`` sent on ``channel`` (``sms`` or ``whatsapp``).

    Raises TypeError for a non-string text and ValueError for an unknown channel, rather
    than guessing a price for something we do not understand.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, not {type(text).__name__}")
    if channel not in CHANNELS:
        raise ValueError(f"unknown channel {channel!r}: expected one of {', '.join(CHANNELS)}")
    if _is_gsm7(text):
        costs = _gsm7_costs(text)
        encoding: Encoding = "gsm7"
        single, multi = GSM7_SINGLE, GSM7_MULTI
    else:
        costs = _utf16_costs(text)
        encoding = "ucs2"
        single, multi = UCS2_SINGLE, UCS2_MULTI
    units = sum(costs)
    if channel == "whatsapp" or units <= single:
        return PartCount(parts=1, encoding=encoding, units=units)
    if units == len(costs):  # every character costs 1: nothing can straddle a boundary
        return PartCount(parts=-(-units // multi), encoding=encoding, units=units)
    return PartCount(parts=len(segment(costs, multi)), encoding=encoding, units=units)


def segment(costs: list[int], capacity: int) -> list[int]:
    """Greedy concatenation: the units in each part, never splitting a character's units.

    ``costs`` holds each character's cost (1, or 2 for an escape or surrogate pair). A
    character that does not fit in what is left of the current part starts the next one.
    Public so the tests can check the segmentation itself, not only its length.
    """
    parts: list[int] = []
    used = 0
    for cost in costs:
        if used + cost > capacity:
            parts.append(used)
            used = 0
        used += cost
    parts.append(used)
    return parts


def _is_gsm7(text: str) -> bool:
    return _GSM7_ALL.issuperset(text)


def _gsm7_costs(text: str) -> list[int]:
    return [2 if char in GSM7_EXTENSION else 1 for char in text]


def _utf16_costs(text: str) -> list[int]:
    """UTF-16 units per code point: 2 above U+FFFF (a surrogate pair), else 1.

    A lone surrogate in a Python string (from a broken decoder) still counts as one unit,
    as it would be sent.
    """
    return [2 if ord(char) > 0xFFFF else 1 for char in text]
