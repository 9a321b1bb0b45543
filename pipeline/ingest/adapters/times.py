"""Carrier times to UTC: zone-less carrier dates are read in the carrier's configured zone.

``check_window`` is the one place a time is held to the plausible years (``ingest.min_year``
to ``ingest.max_year``): every adapter's report time (``report.to_event``) and every time of
the send path (``requests``) pass through it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from pipeline.ingest.adapters.base import Limits, ParseError

#: Longer than any ISO 8601 time with microseconds and an offset.
MAX_TIME_CHARS = 40

# SMPP 3.4 §7.1.1 absolute time: YYMMDDhhmmsstnnp, nn quarter hours from UTC, p "+" or "-".
_SMPP_ABSOLUTE = re.compile(r"^(\d{12})(\d)(\d{2})([+-])$", re.ASCII)


def check_window(value: datetime, limits: Limits, field: str) -> datetime:
    """``value`` in UTC, or ParseError if its year is outside the plausible window.

    A time far outside it is never a real report (a year-999 time once stopped every later
    projection), and near the ends of the calendar a conversion to UTC overflows.
    """
    if value.tzinfo is None:
        raise ParseError(field, "has no time zone")
    if limits.min_year - 1 <= value.year <= limits.max_year + 1:
        try:
            utc = value.astimezone(UTC)
        except OverflowError:
            utc = value
        if limits.min_year <= utc.year <= limits.max_year:
            return utc
    raise ParseError(
        field, f"year {value.year} is outside {limits.min_year}-{limits.max_year} (ingest settings)"
    )


def localise(naive: datetime, zone: ZoneInfo) -> datetime:
    """A wall-clock time in ``zone`` as UTC. In an ambiguous hour (clocks going back) the
    first occurrence is taken; a time in a skipped hour is read with the offset before it.
    A time at the very ends of the calendar, which no zone offset can move, is kept in the
    zone rather than overflowing: ``check_window`` refuses it."""
    local = naive.replace(tzinfo=zone, fold=0)
    try:
        return local.astimezone(UTC)
    except OverflowError:
        return local


def parse_smpp_date(text: str, zone: ZoneInfo, field: str) -> datetime:
    """An SMPP receipt date: ``YYMMDDhhmm`` (the spec), ``YYMMDDhhmmss`` (a common variant),
    both without a zone; or the SMPP absolute time format that carries its own offset."""
    value = text.strip()
    absolute = _SMPP_ABSOLUTE.match(value)
    if absolute:
        naive = _naive(absolute.group(1), "%y%m%d%H%M%S", field, text)
        offset = timedelta(minutes=15 * int(absolute.group(3)))  # two ASCII digits
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
    if len(value) > MAX_TIME_CHARS or not value.isascii():
        raise ParseError(field, f"not an ISO 8601 time: {text[:40]!r}")
    candidate = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", value)
    candidate = re.sub(r"[zZ]$", "+00:00", candidate)
    try:
        parsed = datetime.fromisoformat(candidate)
    except ValueError:
        raise ParseError(field, f"not an ISO 8601 time: {text[:40]!r}") from None
    if parsed.tzinfo is None:
        return localise(parsed, zone)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        return parsed  # year 1 or 9999 at the calendar's edge: check_window refuses it


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
    if not value.isascii():  # strptime's %d etc. would read other scripts' digits
        raise ParseError(field, f"not a valid date: {original[:30]!r}")
    try:
        return datetime.strptime(value, fmt)
    except ValueError:
        raise ParseError(field, f"not a valid date: {original[:30]!r}") from None
