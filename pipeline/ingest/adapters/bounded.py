"""Untrusted text to values, with every size checked before any arithmetic.

A number is judged from its text: ``1E+99999999`` is refused by its exponent, never
expanded (``int()`` of it would hold the event loop for minutes), and a ten-thousand-digit
integer by its length. JSON is parsed with hooks that bound every number literal and refuse
``NaN``/``Infinity``; the parsed document is then refused if it nests deeper than a report
ever does or holds a NUL or a lone surrogate, which no database column stores as text.
Digits are ASCII only: ``int()`` reads Arabic-Indic or full-width digits, a gateway never
writes them, and the text would no longer match what a dedup key or an audit shows.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from decimal import Decimal, InvalidOperation
from typing import Any

from pipeline.ingest.adapters.base import ParseError

#: Characters in a number literal or a numeric string: far more than any real one has.
MAX_NUMBER_CHARS = 40
#: Digits of an integer (below 10**18: a BIGINT column holds it).
MAX_INT_DIGITS = 18
#: Digits before the decimal point of a decimal amount.
MAX_WHOLE_DIGITS = 18
#: Digits after the decimal point, trailing zeros not counted.
MAX_DECIMAL_PLACES = 24
#: Significant digits: a part price times a part count (three digits) stays within the
#: 28 digits Decimal arithmetic keeps exactly.
MAX_SIGNIFICANT_DIGITS = 25
#: JSON nesting; reports are at most four deep.
MAX_DEPTH = 16

_INTEGER = re.compile(r"[+-]?[0-9]+", re.ASCII)
_DECIMAL = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?", re.ASCII)
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


class Refused(ValueError):
    """Input refused by a bound; ``reason`` says which, without echoing the input."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def integer(text: str, field: str) -> int:
    """An integer from ASCII digits (optional sign), at most MAX_INT_DIGITS of them."""
    value = text.strip()
    if len(value) > MAX_NUMBER_CHARS or not _INTEGER.fullmatch(value):
        raise ParseError(field, f"must be an integer, got {_clip(text)}")
    if len(value.lstrip("+-").lstrip("0")) > MAX_INT_DIGITS:
        raise ParseError(field, f"more than {MAX_INT_DIGITS} digits")
    return int(value)


def integral(number: Decimal, field: str) -> int:
    """A whole Decimal (a JSON ``1.0`` or ``1E+2``) as an int, its size checked first."""
    if not number.is_finite():
        raise ParseError(field, "not a finite number")
    if number.is_zero():
        return 0
    if number.adjusted() >= MAX_INT_DIGITS:
        raise ParseError(field, f"more than {MAX_INT_DIGITS} digits")
    if number != number.to_integral_value():
        raise ParseError(field, f"must be an integer, got {_clip(str(number))}")
    return int(number)


def decimal(text: str, field: str) -> Decimal:
    """A finite decimal from its ASCII text, normalised to fixed point.

    Refused when it has more than MAX_WHOLE_DIGITS whole digits, MAX_DECIMAL_PLACES places
    or MAX_SIGNIFICANT_DIGITS digits in all, however it is written (``1E+5000000``,
    ``1E-5000000``): such a value is no price, and written out in fixed point (as payloads
    store decimals) it would take megabytes. A positive exponent is written out (``1.5E+2``
    is ``150``), so what is stored never depends on how the sender spelt the number.
    """
    value = text.strip()
    if len(value) > MAX_NUMBER_CHARS or not _DECIMAL.fullmatch(value):
        raise ParseError(field, f"not a decimal number: {_clip(text)}")
    try:
        number = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only valid literals
        raise ParseError(field, f"not a decimal number: {_clip(text)}") from None
    return bounded_decimal(number, field)


def bounded_decimal(number: Decimal, field: str) -> Decimal:
    """``number`` checked against the digit bounds of ``decimal`` and normalised."""
    if not number.is_finite():
        raise ParseError(field, "not a finite number")
    if number.is_zero():
        return Decimal(0)
    _sign, digits, exponent = number.as_tuple()
    assert isinstance(exponent, int)
    significant = len(digits)
    while exponent < 0 and significant > 1 and digits[significant - 1] == 0:
        significant -= 1
        exponent += 1
    if exponent < -MAX_DECIMAL_PLACES:
        raise ParseError(field, f"more than {MAX_DECIMAL_PLACES} decimal places")
    if significant > MAX_SIGNIFICANT_DIGITS:
        raise ParseError(field, f"more than {MAX_SIGNIFICANT_DIGITS} significant digits")
    if number.adjusted() >= MAX_WHOLE_DIGITS:
        raise ParseError(field, f"more than {MAX_WHOLE_DIGITS} digits before the point")
    if number.as_tuple().exponent > 0:  # type: ignore[operator]
        return number.quantize(Decimal(1))
    return number


def check_text(value: str, field: str) -> str:
    """``value`` unless it holds a NUL or a lone surrogate."""
    if _UNSTORABLE.search(value):
        raise ParseError(field, "holds a NUL or a lone surrogate (not text)")
    return value


def check_pairs(pairs: Iterable[tuple[str, str]], where: str) -> None:
    """Every name and value of query or form pairs is storable text."""
    if not storable(pairs):
        raise ParseError(where, "a field holds a NUL or a lone surrogate (not text)")


def storable(pairs: Iterable[tuple[str, str]]) -> bool:
    """Whether no name or value holds a NUL or a lone surrogate: the plain rule, one
    ``_UNSTORABLE.search`` per text, done cheaply since it runs on every report.

    All the texts are joined and looked at once: the pattern matches single code points,
    and joining never makes or unmakes one (two lone surrogates side by side stay two code
    points). ASCII text (``isascii`` reads a flag the string already has) cannot hold a
    surrogate, so there a NUL is all there is to find. Proven equal to the plain rule in
    tests/ingest/test_bounded.py.
    """
    text = "".join(map("".join, pairs))
    if text.isascii():
        return "\x00" not in text
    return _UNSTORABLE.search(text) is None


def load_json(text: str, *, exact: bool = True) -> Any:
    """``json.loads`` with every bound of this module; Refused (a ValueError) if one is hit,
    json.JSONDecodeError for text that is not JSON.

    ``exact`` reads numbers with a fraction or exponent as Decimal (adapters: no digit lost
    to a float); without it they stay floats, for callers that write the document back out
    (``smsrecon ingest`` re-encodes each record as the request a server would get).
    """
    try:
        document = json.loads(
            text,
            parse_int=_int_literal,
            parse_float=_decimal_literal if exact else _float_literal,
            parse_constant=_constant,
        )
    except RecursionError:
        raise Refused(f"nested more than {MAX_DEPTH} deep") from None
    check_document(document)
    return document


def check_document(document: Any) -> None:
    """Refused if ``document`` nests deeper than MAX_DEPTH or a string (key or value)
    holds a NUL or a lone surrogate. Iterative: a deep document cannot exhaust the stack."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            if _UNSTORABLE.search(value):
                raise Refused("a string holds a NUL or a lone surrogate (not text)")
        elif isinstance(value, dict):
            if depth > MAX_DEPTH:
                raise Refused(f"nested more than {MAX_DEPTH} deep")
            for key, item in value.items():
                if _UNSTORABLE.search(key):
                    raise Refused("a key holds a NUL or a lone surrogate (not text)")
                stack.append((item, depth + 1))
        elif isinstance(value, list):
            if depth > MAX_DEPTH:
                raise Refused(f"nested more than {MAX_DEPTH} deep")
            stack.extend((item, depth + 1) for item in value)


def _int_literal(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise Refused(f"a number longer than {MAX_NUMBER_CHARS} characters")
    return int(text)


def _decimal_literal(text: str) -> Decimal:
    if len(text) > MAX_NUMBER_CHARS:
        raise Refused(f"a number longer than {MAX_NUMBER_CHARS} characters")
    try:
        return Decimal(text)
    except InvalidOperation:  # an exponent beyond what Decimal represents at all
        raise Refused("a number out of range") from None


def _float_literal(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise Refused(f"a number longer than {MAX_NUMBER_CHARS} characters")
    number = float(text)
    mantissa = re.split("[eE]", text, maxsplit=1)[0]
    if math.isinf(number) or (number == 0 and re.search("[1-9]", mantissa)):
        # Beyond a float's range: written back it would be Infinity or 0, not what was sent.
        raise Refused("a number out of range")
    return number


def _constant(name: str) -> Any:
    raise Refused(f"{name} is not a JSON number")


def _clip(text: str) -> str:
    """A short, escaped echo of refused input (repr escapes NULs and surrogates)."""
    return repr(text[:40])
