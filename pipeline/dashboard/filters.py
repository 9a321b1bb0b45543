"""The filters every page takes from its URL, so that any view can be bookmarked and shared.

``period`` is ``day``, ``week`` (Monday to Sunday), ``month`` or ``custom``; ``date`` is
the day the period is around (default: the last day with traffic), ``from``/``to`` the
first and last day of a custom period (both included). ``partner``, ``carrier`` and
``currency`` narrow the rows; empty means all. Days are UTC days, as the views' ``day``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import date, timedelta
from urllib.parse import urlencode

PERIODS = ("day", "week", "month", "custom")
#: Longest custom period: a year of daily rows is already more than a page can show.
MAX_DAYS = 366
_CURRENCY = re.compile(r"[A-Z]{3}")
#: Partner and carrier names are free text in the log; a bound keeps a URL sane.
MAX_NAME = 200


class FilterError(ValueError):
    """A filter in the URL that cannot be read; the text says which and how to write it."""


@dataclass(frozen=True)
class Filters:
    period: str
    anchor: date
    first: date
    #: The day after the last: ``[first, after)``, as ``smsrecon report --from/--to``.
    after: date
    partner: str | None = None
    carrier: str | None = None
    currency: str | None = None

    @property
    def last(self) -> date:
        return self.after - timedelta(days=1)

    @property
    def days(self) -> list[date]:
        return [self.first + timedelta(days=n) for n in range((self.after - self.first).days)]

    def query(self, **changes: str | None) -> str:
        """This page's filters as a query string, with ``changes`` applied (None drops)."""
        values: dict[str, str | None] = {
            "period": self.period,
            "date": None if self.period == "custom" else self.anchor.isoformat(),
            "from": self.first.isoformat() if self.period == "custom" else None,
            "to": self.last.isoformat() if self.period == "custom" else None,
            "partner": self.partner,
            "carrier": self.carrier,
            "currency": self.currency,
        }
        values.update(changes)
        return urlencode({k: v for k, v in values.items() if v})

    def shifted(self, step: int) -> Filters:
        """The same kind of period, ``step`` periods later (earlier when negative)."""
        if self.period == "custom":
            length = self.after - self.first
            return replace(self, first=self.first + step * length, after=self.after + step * length)
        if self.period == "month":
            month = self.anchor.month - 1 + step
            anchor = date(self.anchor.year + month // 12, month % 12 + 1, 1)
        else:
            anchor = self.anchor + timedelta(days=step * (7 if self.period == "week" else 1))
        return period_filters(self.period, anchor, self.partner, self.carrier, self.currency)


def _day(name: str, value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise FilterError(f"{name}: not a day written YYYY-MM-DD: {value[:20]!r}") from None


def _name(name: str, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    if len(value) > MAX_NAME:
        raise FilterError(f"{name}: longer than {MAX_NAME} characters")
    return value


def period_filters(
    period: str,
    anchor: date,
    partner: str | None = None,
    carrier: str | None = None,
    currency: str | None = None,
) -> Filters:
    if period == "day":
        first, after = anchor, anchor + timedelta(days=1)
    elif period == "week":
        first = anchor - timedelta(days=anchor.weekday())
        after = first + timedelta(days=7)
    elif period == "month":
        first = anchor.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
    else:
        raise FilterError(f"period: one of {', '.join(PERIODS)}")
    return Filters(period, anchor, first, after, partner, carrier, currency)


def parse_filters(query: dict[str, str], default_day: date) -> Filters:
    """The filters of a request's query; FilterError (a 400 page) for one that is wrong."""
    period = query.get("period") or "month"
    if period not in PERIODS:
        raise FilterError(f"period: one of {', '.join(PERIODS)}, not {period[:20]!r}")
    partner = _name("partner", query.get("partner"))
    carrier = _name("carrier", query.get("carrier"))
    currency = query.get("currency") or None
    if currency is not None and not _CURRENCY.fullmatch(currency):
        raise FilterError(f"currency: three capital letters (ISO 4217), not {currency[:20]!r}")
    if period == "custom":
        if not query.get("from") or not query.get("to"):
            raise FilterError("period custom needs from and to (YYYY-MM-DD, both included)")
        first, last = _day("from", query["from"]), _day("to", query["to"])
        if last < first:
            raise FilterError("to must not be before from (both days are included)")
        if (last - first).days >= MAX_DAYS:
            raise FilterError(f"a custom period is at most {MAX_DAYS} days")
        return Filters(period, first, first, last + timedelta(days=1), partner, carrier, currency)
    anchor = _day("date", query["date"]) if query.get("date") else default_day
    return period_filters(period, anchor, partner, carrier, currency)
