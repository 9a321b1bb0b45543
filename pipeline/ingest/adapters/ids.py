"""Carrier message ids in one canonical form, so a report and its submission meet.

The same id reaches us spelt differently: hex ids in upper or lower case (Vonage's
``0A0000001234567B``, SMPP ``3E8F2B1C``), and SMSCs that quote the submit_sm_resp id in a
delivery receipt in the other number base. Kannel documents the latter as the SMSC setting
``msg-id-type`` (bit 1: submit_sm_resp id is hex, bit 2: deliver_sm id is hex; the default
is an opaque C string). Whoever records ``carrier.submitted`` and whoever parses the report
call this same function, so both sides store the same text.
"""

from __future__ import annotations

from pipeline.ingest.adapters.base import ParseError

MAX_ID = 128


def normalise_carrier_message_id(
    value: str, *, base: int | None = None, field: str = "carrier_message_id"
) -> str:
    """The canonical spelling of a carrier's message id.

    ``base=None`` (the SMPP default, an opaque string): surrounding blanks removed, letters
    lower-cased. ``base=16`` or ``base=10``: the id is a number written in that base (as an
    SMSC's ``msg-id-type`` says) and becomes its decimal digits without leading zeros, so
    ``"3E8F2B1C"`` read as hex and ``"1049570076"`` read as decimal are the same id.
    """
    if not isinstance(value, str):
        raise ParseError(field, f"must be a string, got {type(value).__name__}")
    text = value.strip()
    if not text:
        raise ParseError(field, "is empty")
    if base is None:
        text = text.lower()
    elif base in (10, 16):
        # ASCII digits only, and bounded before int(): the decimal form must fit MAX_ID.
        if not text.isascii() or len(text) > MAX_ID:
            raise ParseError(field, f"{text[:40]!r} is not a base-{base} number")
        try:
            number = int(text, base)
        except ValueError:
            raise ParseError(field, f"{text!r} is not a base-{base} number") from None
        if number < 0:
            raise ParseError(field, f"{text!r} is negative")
        text = str(number)
    else:
        raise ValueError(f"base must be None, 10 or 16, not {base!r}")
    if len(text) > MAX_ID:
        raise ParseError(field, f"longer than {MAX_ID} characters")
    return text
