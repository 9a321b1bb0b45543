"""Carrier times to UTC: zone-less carrier dates are read in the carrier's configured zone."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.ingest.adapters.base import ParseError

# SMPP 3.4 §7.1.1 absolute time: YYMMDDhhmmsstnnp, nn quarter hours from UTC, p "+" or "-".
_SMPP_ABSOLUTE = re.compile(r"^(\d{12})(\d)(\d{2})([+-])$")


def localise(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone`` as UTC. In an ambiguous hour (clocks going back) the
    first occurrence is taken; a time in a skipped hour is read with the offset before it."""
    return naive.replace(tzinfo=zone, fold=0).astimezone(UTC)


def parse_smpp_date(text: str, zone: ZoneInfo, field: str) -> datetime:
    """An SMPP receipt date: ``YYMMDDhhmm`` (the spec), ``YYMMDDhhmmss`` (a common variant),
    both without a zone; or the SMPP absolute time format that carries its own offset."""
    value = text.strip()
    absolute = _SMPP_ABSOLUTE.match(value)
    if absolute:
        naive = _naive(absolute.group(1), "%y%m%d%H%M%S", field, text)
        offset = timedelta(minutes=15 * int(absolute.group(3)))
        if absolute.group(4) == "-":
            offset = -offset
        return (naive - offset).replace(tzinfo=UTC)
    if len(value) in (10, 12) and value.isascii() and value.isdigit():
        return localise(_digits(value, field, text), zone)
    raise ParseError(field, f"not an SMPP date (YYMMDDhhmm[ss]): {text[:30]!r}")


def parse_local_datetime(text: str, fmt: str, zone: ZoneInfo, field: str) -> datetime:
    """A zone-less time in a gateway's documented layout, read in the carrier's zone."""
    return localise(_naive(text.strip(), fmt, field, text), zone)


def parse_iso_datetime(text: str, zone: ZoneInfo, field: str) -> datetime:
    """An ISO 8601 / RFC 3339 time; one without an offset is read in the carrier's zone.

    Accepts ``Z`` and compact offsets such as Infobip's ``+0000``."""
    value = text.strip()
    if not value:
        raise ParseError(field, "empty time")
    candidate = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)
    candidate = re.sub(r"[zZ]$", "+00:00", candidate)
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise ParseError(field, f"not an ISO 8601 time: {text[:40]!r}") from None
    if parsed.tzinfo is None:
        return localise(parsed, zone)
    return parsed.astimezone(UTC)


def _digits(value: str, field: str, original: str) -> datetime:
    """``YYMMDDhhmm[ss]`` (ASCII digits) as a naive datetime, without ``strptime``'s
    format-parsing cost (this runs for every receipt). Two-digit years follow strptime's
    ``%y`` (POSIX): 69-99 are 1969-1999, 00-68 are 2000-2068."""
    year = int(value[0:2])
    try:
        return datetime(
            year + (1900 if year >= 69 else 2000),
            int(value[2:4]),
            int(value[4:6]),
            int(value[6:8]),
            int(value[8:10]),
            int(value[10:12]) if len(value) == 12 else 0,
        )
    except ValueError:
        raise ParseError(field, f"not a valid date: {original[:30]!r}") from None


def _naive(value: str, fmt: str, field: str, original: str) -> datetime:
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        raise ParseError(field, f"not a valid date: {original[:30]!r}") from None
