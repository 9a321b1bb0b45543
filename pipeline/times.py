"""Every text form of a time smsrecon writes, each with a name, written and read here alone.

Times are aware UTC datetimes everywhere in the code; they become text in four forms:

================  ================================  ============================================
form              example                           where
================  ================================  ============================================
storage text      ``2026-01-15 10:05:00.000000``    SQLite's time columns (naive UTC: text order
                                                    is time order; PostgreSQL has ``timestamptz``)
fold text         ``2026-01-15T10:05:00.000000Z``   the fold's stamps and timers (fixed width:
                                                    text order is time order)
ISO text          ``2026-01-15T10:05:00+00:00``     facts kept in JSON (``accepted_at``) and the
                                                    content a dedup key is derived from
display text      ``2026-01-15T10:05:00Z``          what people and JSON output read (RFC 3339)
================  ================================  ============================================

Storage text: the year is always four digits. ``strftime("%Y")`` writes year 999 as ``999``
on glibc, which sorts after ``2026`` and which ``datetime.fromisoformat`` refuses, so that a
single such row once made the whole log unreadable. The log is append-only and rows written
in that old form can never be mended, so reading accepts them too (a year of one to four
digits, an optional fraction, an optional offset).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

#: What older versions wrote, and anything else a row might hold that names a time:
#: a year of 1-4 digits, ``T`` or a space, seconds and fraction optional, an offset or Z.
_LENIENT = re.compile(
    r"\s*(\d{1,4})-(\d{1,2})-(\d{1,2})"
    r"(?:[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2})(?:\.(\d{1,6})\d*)?)?)?"
    r"\s*(Z|[+-]\d{2}(?::?\d{2})?)?\s*",
    re.IGNORECASE,
)


# -- storage text (SQLite) -----------------------------------------------------------------


def sqlite_time_text(value: datetime) -> str:
    """The stored text of an aware time: naive UTC, four-digit year, microseconds.

    ``isoformat`` pads the year to four digits and is the C fast path (this runs for every
    appended event and every written state row).
    """
    if value.tzinfo is None:
        raise ValueError("naive datetime: every stored time must be timezone-aware UTC")
    if value.tzinfo is not UTC:
        try:
            value = value.astimezone(UTC)
        except OverflowError:
            raise ValueError(f"{value.isoformat()} is outside the years 1-9999 in UTC") from None
    return value.isoformat(" ", "microseconds")[:-6]


def parse_sqlite_time(text: str) -> datetime:
    """An aware UTC time from any text smsrecon has ever stored; ValueError for anything else."""
    try:
        value = datetime.fromisoformat(text)
    except (TypeError, ValueError):
        value = _parse_lenient(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(f"not a stored time: {text[:40]!r} is outside the years 1-9999") from None


def parse_stored_time(value: object) -> datetime:
    """A stored time read as text or loaded by the driver (PostgreSQL's ``timestamptz``
    text, e.g. ``2026-01-15 10:05:00+00``, included); ValueError when it names none."""
    if isinstance(value, datetime):
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)
    if not isinstance(value, str):
        raise ValueError(f"not a stored time: a {type(value).__name__}")
    return parse_sqlite_time(value)


# -- fold text ------------------------------------------------------------------------------


def fold_time_text(value: datetime) -> str:
    """Fixed-width UTC text with a ``Z``, so that string order is time order.

    ``isoformat`` with a fixed ``timespec`` is the C fast path (``strftime`` costs several
    times more, and this runs for every folded event).
    """
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(timespec="microseconds")[:-6] + "Z"


def parse_fold_time_text(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- ISO text -------------------------------------------------------------------------------


def iso_time_text(value: datetime) -> str:
    """``isoformat`` of the UTC time (``+00:00``), as facts and dedup keys keep it."""
    return value.astimezone(UTC).isoformat()


def parse_iso_time_text(value: str) -> datetime:
    return datetime.fromisoformat(value)


# -- display text ---------------------------------------------------------------------------


def display_time_text(value: datetime) -> str:
    """RFC 3339 with ``Z``, for people and JSON output (a naive time is refused)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime: every time must be timezone-aware UTC")
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339_text(value: str) -> datetime:
    """An RFC 3339 time as received (``Z`` or an offset); ValueError when it names none,
    and a naive datetime when it has no zone (the caller decides what that means)."""
    return datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))


def _parse_lenient(text: str) -> datetime:
    match = _LENIENT.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not a stored time: {text[:40]!r}")
    year, month, day, hour, minute, second, fraction, offset = match.groups()
    zone = UTC
    if offset and offset.upper() != "Z":
        digits = offset[1:].replace(":", "")
        delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:] or 0))
        zone = timezone(-delta if offset[0] == "-" else delta)
    return datetime(
        int(year),
        int(month),
        int(day),
        int(hour or 0),
        int(minute or 0),
        int(second or 0),
        int((fraction or "0").ljust(6, "0")),
        tzinfo=zone,
    )
