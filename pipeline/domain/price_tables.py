"""Price tables as the log records them: which table of a scope prices a message.

A *scope* is ``billing`` (the sale tariffs, ``billing.tariffs``) or ``carrier:<name>`` (that
carrier's rate card, ``carriers.<name>.rates``). Each table in force is recorded in the log
(a ``prices.recorded`` event) with a version per scope and the SHA-256 of its canonical
JSON, so the price of a message is a function of the log, never of today's config.yaml:

* a message is priced by the table of its scope recorded last *before* its
  ``message.accepted`` event (by log position);
* a message older than the first recorded table is priced by that first table;
* a repricing (``prices.repriced``) names the version a range of messages is priced by
  instead;
* a log with no table of the scope uses the configured one (version 0): what a
  configuration gives before anything was recorded, and what the tests build directly.

Pure: values in, values out.
"""

from __future__ import annotations

import hashlib
import json
from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pipeline.domain.tariffs import (
    TariffRule,
    check_currency,
    check_prefix,
    check_price,
    check_time,
)

BILLING = "billing"
CARRIER_PREFIX = "carrier:"


def carrier_scope(name: str) -> str:
    return CARRIER_PREFIX + name


class PriceTableError(ValueError):
    """A recorded table whose rules cannot be read (the projector skips the event)."""


@dataclass(frozen=True, slots=True)
class PriceTable:
    """One table of a scope: ``version`` 0 is the configured one, never recorded."""

    scope: str
    version: int
    position: int
    sha256: str
    rules: tuple[TariffRule, ...]

    @property
    def label(self) -> str:
        """How ``explain`` and the CLI name it: ``billing v3`` (``v0``: not recorded)."""
        return f"{self.scope} v{self.version}"


def _time_text(moment: datetime | None) -> str | None:
    """RFC 3339 in UTC with ``Z`` (``pipeline.times.display_time_text``'s form; the domain
    imports nothing of the pipeline outside it)."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def rule_json(rule: TariffRule) -> dict[str, Any]:
    """One rule as canonical JSON: money as text, times RFC 3339 in UTC with ``Z``."""
    return {
        "prefix": rule.prefix,
        "price_per_part": format(rule.price_per_part, "f"),
        "currency": rule.currency,
        "partner": rule.partner,
        "channel": rule.channel,
        "dispatch_type": rule.dispatch_type,
        "valid_from": _time_text(rule.valid_from),
        "valid_to": _time_text(rule.valid_to),
    }


def rules_json(rules: Sequence[TariffRule]) -> list[dict[str, Any]]:
    return [rule_json(rule) for rule in rules]


def table_sha256(rules: Sequence[TariffRule]) -> str:
    """The SHA-256 of the canonical JSON (sorted keys, no spaces): equal tables, equal hash.

    The order of the rules is part of the table (it breaks the last tie of selection).
    """
    canonical = json.dumps(rules_json(rules), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def rules_of_json(data: Any) -> tuple[TariffRule, ...]:
    """The rules a recorded table states (the inverse of ``rules_json``), checked as the
    configuration checks them."""
    if not isinstance(data, list):
        raise PriceTableError("rules: a list of tariffs")
    out = []
    for i, item in enumerate(data):
        if not isinstance(item, dict):
            raise PriceTableError(f"rules[{i}]: an object")
        try:
            price = item.get("price_per_part")
            if not isinstance(price, str):
                raise ValueError("price_per_part: a decimal as text")
            rule = TariffRule(
                prefix=check_prefix(item.get("prefix")),
                price_per_part=check_price(price),
                currency=check_currency(item.get("currency")),
                partner=_optional_text(item.get("partner")),
                channel=_optional_text(item.get("channel")),
                dispatch_type=_optional_text(item.get("dispatch_type")),
                valid_from=check_time(item.get("valid_from")),
                valid_to=check_time(item.get("valid_to")),
            )
        except ValueError as exc:
            raise PriceTableError(f"rules[{i}]: {exc}") from None
        out.append(rule)
    return tuple(out)


def _optional_text(value: Any) -> str | None:
    if value is not None and (type(value) is not str or len(value) > 64):
        raise ValueError("a qualifier is a text of at most 64 characters")
    return value


def configured_table(scope: str, rules: Sequence[TariffRule]) -> PriceTable:
    """The configured table as version 0, in force from position 0 (until one is recorded)."""
    rules = tuple(rules)
    return PriceTable(scope, 0, 0, table_sha256(rules), rules)


def table_in_force(
    recorded: Sequence[PriceTable], position: int, configured: PriceTable
) -> PriceTable:
    """The table that prices a message accepted at log ``position``.

    ``recorded`` is the scope's tables in log order. The last one recorded before
    ``position``; for a message older than the first, the first; with none, ``configured``.
    """
    if not recorded:
        return configured
    # Positions are unique and ascending: bisect on them.
    index = bisect_left(_Positions(recorded), position)
    return recorded[max(0, index - 1)]


class _Positions:
    """A sequence view of the tables' positions, for ``bisect`` without a copy."""

    __slots__ = ("tables",)

    def __init__(self, tables: Sequence[PriceTable]) -> None:
        self.tables = tables

    def __len__(self) -> int:
        return len(self.tables)

    def __getitem__(self, index: int) -> int:
        return self.tables[index].position


def table_version(recorded: Sequence[PriceTable], version: int) -> PriceTable | None:
    """The scope's table of that version (a repricing names one), or None."""
    for table in recorded:
        if table.version == version:
            return table
    return None
