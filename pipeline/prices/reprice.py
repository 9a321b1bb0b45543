"""Repricing on purpose: a range of messages priced again by a named table version.

Editing config.yaml never reprices a message already accepted (``pipeline.prices.record``).
When a past range must be priced differently, a person says so: ``smsrecon prices reprice``
appends a ``prices.repriced`` event naming the scope, the table version and the
``accepted_at`` range; the projector makes that version a fact of each message of the range
and derives it again. The plan below computes what that will change, with the very fold the
projector uses, so the command can show it before (``--dry-run``) and after.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, select

from pipeline.domain.price_tables import BILLING, CARRIER_PREFIX, PriceTable
from pipeline.eventlog import NewEvent
from pipeline.eventlog.model import utc_now
from pipeline.prices.record import REPRICED
from pipeline.projector.derive import FoldRules, derive_view
from pipeline.projector.reference import LiveBook, concerned_by_repricing
from pipeline.projector.store import LIVE, load_facts
from pipeline.times import display_time_text

CHUNK = 1000


class RepriceError(ValueError):
    """The repricing cannot be done as asked (no such scope or version)."""


@dataclass
class Plan:
    scope: str
    version: int
    start: datetime
    end: datetime
    messages: int = 0
    changed: int = 0
    #: currency -> total, before and after (payment_sum, or the expected carrier cost).
    before: dict[str, Decimal] = field(default_factory=dict)
    after: dict[str, Decimal] = field(default_factory=dict)

    def lines(self) -> list[str]:
        what = "payment_sum" if self.scope == BILLING else "expected carrier cost"
        out = [
            f"{self.scope} v{self.version} for messages accepted in "
            f"[{display_time_text(self.start)}, {display_time_text(self.end)}): "
            f"{self.messages} messages, {self.changed} changed"
        ]
        for currency in sorted(set(self.before) | set(self.after)):
            old = self.before.get(currency, Decimal(0))
            new = self.after.get(currency, Decimal(0))
            out.append(f"  {what} {currency}: {old} -> {new} ({new - old:+})")
        return out


def table_to_apply(conn: Connection, scope: str, version: int | None) -> PriceTable:
    """The projected table of ``scope`` to apply: ``version``, else the latest."""
    tables = LiveBook(conn, LIVE).recorded_tables(scope)
    if not tables:
        raise RepriceError(f"{scope}: no table recorded (run smsrecon project first)")
    if version is None:
        return tables[-1]
    for table in tables:
        if table.version == version:
            return table
    known = ", ".join(f"v{t.version}" for t in tables)
    raise RepriceError(f"{scope}: no version {version} (recorded: {known})")


def plan_reprice(
    conn: Connection, rules: FoldRules, table: PriceTable, start: datetime, end: datetime
) -> Plan:
    """What repricing ``[start, end)`` by ``table`` changes, derived as the projector will."""
    plan = Plan(table.scope, table.version, start, end)
    book = LiveBook(conn, LIVE)
    rules.finance.book = book
    ids = concerned_by_repricing(conn, LIVE, table.scope, start, end)
    for chunk in _chunks(ids):
        for facts in load_facts(conn, LIVE, chunk).values():
            old = _money(derive_view(facts, rules), table.scope)
            facts.repriced[table.scope] = (table.version, 0)
            new = _money(derive_view(facts, rules), table.scope)
            plan.messages += 1
            plan.changed += old != new
            _add(plan.before, old)
            _add(plan.after, new)
    return plan


def totals(conn: Connection, scope: str, start: datetime, end: datetime) -> dict[str, Decimal]:
    """The stored totals per currency of the range (what the projection holds now)."""
    st = LIVE.state
    if scope == BILLING:
        amount, currency = st.c.payment_sum, st.c.currency_iso
        where = []
    else:
        amount, currency = st.c.carrier_cost_expected, st.c.carrier_cost_expected_currency
        where = [st.c.carrier == scope[len(CARRIER_PREFIX) :]]
    rows = conn.execute(
        select(amount, currency).where(st.c.accepted_at >= start, st.c.accepted_at < end, *where)
    )
    out: dict[str, Decimal] = {}
    for row in rows:
        _add(out, (row[0], row[1]))
    return out


def reprice_event(plan: Plan, note: str) -> NewEvent:
    return NewEvent(
        type=REPRICED,
        occurred_at=utc_now(),
        source="cli",
        payload={
            "scope": plan.scope,
            "version": plan.version,
            "accepted_from": display_time_text(plan.start),
            "accepted_to": display_time_text(plan.end),
            "note": note,
            "messages": plan.messages,
        },
    )


def _money(view: Any, scope: str) -> tuple[Decimal | None, str | None]:
    if scope == BILLING:
        return view.payment_sum, view.currency_iso
    expected = view.finance.expected if view.finance else None
    return (expected.amount, expected.currency) if expected else (None, None)


def _add(totals: dict[str, Decimal], money: tuple[Decimal | None, str | None]) -> None:
    amount, currency = money
    if amount is not None and currency is not None:
        totals[currency] = totals.get(currency, Decimal(0)) + amount


def _chunks(ids: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(ids), CHUNK):
        yield ids[start : start + CHUNK]
