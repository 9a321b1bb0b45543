"""Tariffs: which price per part applies to a message.

A tariff (``billing.tariffs`` in config.yaml) prices one part sent to destinations whose
E.164 number starts with ``prefix``, optionally only for one partner, channel or dispatch
type, and optionally only for messages *accepted* in ``[valid_from, valid_to)``. Selecting
by acceptance time is what makes a price change safe: a message accepted before the change
keeps the old tariff however late its report arrives or however often the log is replayed.

Selection, in order:

1. candidates: every qualifier that is set equals the message's (an absent qualifier matches
   anything), the validity window covers ``accepted_at``, and the prefix starts the
   destination's E.164 form;
2. the longest prefix wins (``+7916`` over ``+7``);
3. then the most qualifiers set (partner + channel over channel alone);
4. a tie left after that goes to the tariff written first in the list.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from typing import Any, Protocol

import phonenumbers

from pipeline.domain.money import currency_exponent

#: ``+`` and up to 15 digits (E.164's maximum), not starting with 0; a bare ``+`` is a
#: catch-all that any longer prefix beats.
PREFIX_PATTERN = re.compile(r"^\+(?:[1-9][0-9]{0,14})?$")


class TariffError(ValueError):
    """A tariff in the configuration is unusable; the text names it and the field."""


@dataclass(frozen=True, slots=True)
class TariffRule:
    """One validated tariff. Times are tz-aware UTC; validity is ``[valid_from, valid_to)``."""

    prefix: str
    price_per_part: Decimal
    currency: str
    partner: str | None = None
    channel: str | None = None
    dispatch_type: str | None = None
    valid_from: datetime | None = None
    valid_to: datetime | None = None

    @property
    def qualifiers(self) -> int:
        """How many of partner, channel, dispatch_type are set: the specificity tie-break."""
        return sum(q is not None for q in (self.partner, self.channel, self.dispatch_type))

    def covers(self, at: datetime) -> bool:
        """Whether a message accepted at ``at`` falls in this tariff's validity window."""
        if self.valid_from is not None and at < self.valid_from:
            return False
        return self.valid_to is None or at < self.valid_to


# Field checks, shared with the config model so that a bad tariff fails when the file is
# loaded and again (defensively) when rules are built. Each raises ValueError(reason).


def check_prefix(value: object) -> str:
    if not isinstance(value, str) or not PREFIX_PATTERN.match(value):
        raise ValueError(
            f"{value!r} is not an E.164 prefix: '+' and up to 15 digits, such as '+7' or '+7916'"
        )
    return value


def check_currency(value: object) -> str:
    if not isinstance(value, str) or currency_exponent(value) is None:
        raise ValueError(f"{value!r} is not an ISO 4217 currency code such as 'RUB' or 'EUR'")
    return value


def check_price(value: object) -> Decimal:
    """A price from the config: a quoted decimal string, an int, or a Decimal; never a float.

    YAML reads an unquoted ``0.1`` as a binary float that is not 0.1, so such a price is
    refused rather than silently converted: prices are written quoted.
    """
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a price: write a decimal string such as '0.1'")
    if isinstance(value, float):
        raise ValueError(
            f"{value!r} is a YAML number: write the price quoted, such as '0.1', so it is "
            "read exactly"
        )
    if isinstance(value, int):
        price = Decimal(value)
    elif isinstance(value, Decimal):
        price = value
    elif isinstance(value, str):
        try:
            price = Decimal(value.strip())
        except ArithmeticError:
            raise ValueError(f"{value!r} is not a decimal number") from None
    else:
        raise ValueError(f"a decimal string such as '0.1', not {type(value).__name__}")
    if not price.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if price < 0:
        raise ValueError(f"{value!r} is negative")
    return price


def check_time(value: object) -> datetime | None:
    """An RFC 3339 time with a zone (``2026-02-01T00:00:00Z``), as tz-aware UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{text!r} is not an RFC 3339 time such as 2026-02-01T00:00:00Z"
            ) from None
        # A bare date parses as a naive midnight: refuse it below, by name.
        bare_date = "T" not in text.upper() and " " not in text
        value = parsed.date() if bare_date else parsed
    if isinstance(value, date) and not isinstance(value, datetime):
        raise ValueError(
            f"{value.isoformat()} is a date: write a time with a zone, such as "
            f"{value.isoformat()}T00:00:00Z"
        )
    if not isinstance(value, datetime):
        raise ValueError(f"{value!r} is not an RFC 3339 time such as 2026-02-01T00:00:00Z")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{value.isoformat()!r} has no zone: add Z or an offset such as +03:00")
    return value.astimezone(UTC)


class TariffSettings(Protocol):
    """One configured tariff as ``rules_from_settings`` reads it (``pipeline.config.Tariff``
    is one). A protocol, so the domain does not import the configuration it serves."""

    @property
    def partner(self) -> str | None: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def dispatch_type(self) -> str | None: ...
    @property
    def prefix(self) -> object: ...
    @property
    def price_per_part(self) -> object: ...
    @property
    def currency(self) -> object: ...
    @property
    def valid_from(self) -> object: ...
    @property
    def valid_to(self) -> object: ...


def rules_from_settings(tariffs: Sequence[TariffSettings]) -> list[TariffRule]:
    """Validated rules, in the configured order (the order breaks the last tie).

    Raises TariffError naming ``billing.tariffs[i].field: reason`` for the first bad one.
    """
    rules: list[TariffRule] = []
    for i, tariff in enumerate(tariffs):
        where = f"billing.tariffs[{i}]"
        checked: dict[str, Any] = {}
        for field, check in (
            ("prefix", check_prefix),
            ("price_per_part", check_price),
            ("currency", check_currency),
            ("valid_from", check_time),
            ("valid_to", check_time),
        ):
            try:
                checked[field] = check(getattr(tariff, field))
            except ValueError as exc:
                raise TariffError(f"{where}.{field}: {exc}") from None
        valid_from, valid_to = checked["valid_from"], checked["valid_to"]
        if valid_from is not None and valid_to is not None and not valid_from < valid_to:
            raise TariffError(f"{where}.valid_to: must be after valid_from")
        rules.append(
            TariffRule(
                prefix=checked["prefix"],
                price_per_part=checked["price_per_part"],
                currency=checked["currency"],
                partner=tariff.partner,
                channel=tariff.channel,
                dispatch_type=tariff.dispatch_type,
                valid_from=valid_from,
                valid_to=valid_to,
            )
        )
    return rules


@lru_cache(maxsize=65_536)
def normalize_phone(phone: str) -> str | None:
    """The E.164 form of a destination (``+79161234567``), or None if it is not a number.

    Numbers are international: a leading ``00`` or none at all is read as ``+`` (Altegio
    and many gateways write ``79161234567``). Only the shape of the number is checked
    (``is_possible_number``), not whether its range is allocated today: a number a
    carrier delivered to must still find its price when the metadata is older.
    """
    if not isinstance(phone, str):
        return None
    text = phone.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    elif not text.startswith("+"):
        text = "+" + text
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def select_tariff(
    rules: Sequence[TariffRule],
    *,
    partner: str,
    channel: str,
    dispatch_type: str | None,
    phone: str,
    accepted_at: datetime,
) -> TariffRule | None:
    """The tariff for a message (see the module docstring), or None when none applies.

    None also when the phone cannot be read as a number: such a message has no price and
    is reported (``no_tariff``) rather than billed by a guess.
    """
    if accepted_at.tzinfo is None or accepted_at.utcoffset() is None:
        raise ValueError("accepted_at must be tz-aware")
    destination = normalize_phone(phone)
    if destination is None:
        return None
    best: TariffRule | None = None
    best_key: tuple[int, int] = (-1, -1)
    for rule in rules:
        if (
            (rule.partner is None or rule.partner == partner)
            and (rule.channel is None or rule.channel == channel)
            and (rule.dispatch_type is None or rule.dispatch_type == dispatch_type)
            and destination.startswith(rule.prefix)
            and rule.covers(accepted_at)
        ):
            key = (len(rule.prefix), rule.qualifiers)
            if key > best_key:  # strictly greater: the earlier rule keeps a tie
                best, best_key = rule, key
    return best
