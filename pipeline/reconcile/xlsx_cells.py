"""Spreadsheet cell values to exact values: pure, no file.

A numeric cell's ``<v>`` is the text the writer stored for an IEEE double. Excel shows and
keeps 15 significant digits, yet some writers store all 17 that round-trip the double
(``3.5000000000000003E-2`` for what was typed as ``0.035``). The text is read as a Decimal
as it is when it has 15 significant digits or fewer; beyond that it is a float artifact, and
the value is the shortest decimal that reads back as the same double (``repr``: ``0.035``),
or, when even that is longer than 15 digits (a computed ``=0.1+0.2``), the 15 digits Excel
shows. The float is only a way to find those digits: the amount is the Decimal of the text.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, ROUND_HALF_UP, Context, Decimal

#: Significant digits Excel keeps and shows.
EXCEL_DIGITS = 15
#: Day 0 of the 1900 date system (1899-12-31 plus Excel's phantom 1900-02-29) and of the
#: 1904 system. Serials before 61 (March 1900) are off by one in the 1900 system: no invoice
#: is that old, and the plausible-year check refuses them anyway.
EPOCH_1900 = datetime(1899, 12, 30)
EPOCH_1904 = datetime(1904, 1, 1)
#: The last day a datetime holds (9999-12-31) as a 1900 serial.
MAX_SERIAL = 2958465
#: The letters of the last column Excel has (XFD = 16384).
MAX_COLUMN = 16384

_NUMBER = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]{1,4})?", re.ASCII)
_REFERENCE = re.compile(r"([A-Z]{1,3})([0-9]*)", re.ASCII)
_SHOWN = Context(prec=EXCEL_DIGITS, rounding=ROUND_HALF_EVEN)


def number(text: str) -> Decimal | None:
    """The exact decimal of a numeric cell's ``<v>`` text, None if it is no number."""
    text = text.strip()
    if len(text) > 40 or not _NUMBER.fullmatch(text):
        return None
    value = Decimal(text)
    if _significant(value) <= EXCEL_DIGITS:
        return value
    shortest = Decimal(repr(float(text)))
    if _significant(shortest) <= EXCEL_DIGITS:
        return shortest
    return _SHOWN.plus(value).normalize(_SHOWN)


def _significant(value: Decimal) -> int:
    """Digits from the first non-zero one to the last non-zero one."""
    digits = "".join(map(str, value.as_tuple().digits)).strip("0")
    return len(digits)


def date_serial(text: str, *, date1904: bool = False) -> datetime | None:
    """A date cell's serial (days since the epoch, the fraction a part of a day) as a
    zoneless datetime rounded to the second; None if it is no date a datetime holds."""
    value = number(text)
    if value is None or value < 0 or value > MAX_SERIAL:
        return None
    seconds = (value * 86400).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    epoch = EPOCH_1904 if date1904 else EPOCH_1900
    try:
        return epoch + timedelta(seconds=int(seconds))
    except OverflowError:
        return None


def column_index(reference: str) -> int | None:
    """0 for column A of a cell reference such as ``B12`` (1), None if it is none."""
    found = _REFERENCE.fullmatch(reference)
    if found is None:
        return None
    index = 0
    for letter in found.group(1):
        index = index * 26 + ord(letter) - ord("A") + 1
    return index - 1 if index <= MAX_COLUMN else None
