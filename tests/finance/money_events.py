"""Builders for the money events finance folds: invoice lines, headers, closings, rates and
Altegio's acknowledgements (shapes from docs/events.md, as the importers write them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import NewEvent
from pipeline.projector.derive import FoldRules
from pipeline.projector.finance import CarrierTerms, FinanceRules
from pipeline.projector.replay import verify
from pipeline.projector.runner import catch_up
from pipeline.projector.tables import message_state, mismatches
from tests.projector.events import T0, at

GRACE = 600.0
#: The sale: 2.27 RUB a part to +7. The buy: 0.50 RUB a part from mts, agreeing within 0.01.
TARIFFS = [TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")]
MTS = CarrierTerms(
    rates=(TariffRule(prefix="+7", price_per_part=Decimal("0.50"), currency="RUB"),),
    charge_on="submitted",
    tolerance_abs=Decimal("0.01"),
)


def rules(**carriers: CarrierTerms) -> FoldRules:
    return FoldRules(
        tariffs=list(TARIFFS),
        finance=FinanceRules(carriers=carriers or {"mts": MTS}, reporting_currency="EUR"),
    )


def line(
    invoice: str,
    number: int,
    cost: str,
    *,
    mid: str | None = None,
    cmid: str | None = None,
    version: int = 1,
    parts: int = 1,
    currency: str = "RUB",
    carrier: str = "mts",
    minute: float = 30,
) -> NewEvent:
    payload: dict[str, Any] = {
        "carrier": carrier,
        "cost": cost,
        "currency": currency,
        "parts": parts,
        "invoice_id": invoice,
        "version": version,
        "line": number,
    }
    if mid is not None:
        payload["message_id"] = mid
    if cmid is not None:
        payload["carrier_message_id"] = cmid
    return NewEvent(
        "carrier.invoiced",
        at(minute),
        "test",
        payload,
        message_id=mid,
        carrier=carrier,
        carrier_message_id=cmid,
        dedup_key=f"invoice:{invoice}:v{version}:line:{number}",
    )


def header(
    invoice: str,
    *,
    version: int = 1,
    total: str | None = None,
    lines: int = 1,
    carrier: str = "mts",
    days: tuple[int, int] = (0, 1),
) -> NewEvent:
    start = T0.replace(hour=0, minute=0)
    return NewEvent(
        "carrier.invoice",
        datetime(2026, 11, 30, tzinfo=UTC),
        "test",
        {
            "invoice_id": invoice,
            "carrier": carrier,
            "version": version,
            "period_from": (start + timedelta(days=days[0])).isoformat(),
            "period_to": (start + timedelta(days=days[1])).isoformat(),
            "currency": "RUB",
            "total": total,
            "lines": lines,
            "sha256": f"{invoice}-{version}".ljust(64, "0"),
            "file": f"{invoice}.csv",
        },
        carrier=carrier,
        dedup_key=f"invoice:{invoice}:v{version}",
    )


def closed(invoice: str, carrier: str = "mts") -> NewEvent:
    return NewEvent(
        "carrier.invoice_closed",
        datetime(2026, 11, 30, tzinfo=UTC),
        "test",
        {"invoice_id": invoice, "carrier": carrier, "version": None},
        carrier=carrier,
        dedup_key=f"invoice:{invoice}:closed",
    )


def rate(day: str, base: str, quote: str, value: str) -> NewEvent:
    return NewEvent(
        "fx.rate",
        datetime.fromisoformat(day).replace(tzinfo=UTC),
        "test",
        {"day": day, "base": base, "quote": quote, "rate": value, "source": "test"},
        dedup_key=f"fx:{day}:{base}:{quote}:{value}",
    )


def acked(mid: str, payment_sum: str, currency: str = "RUB", status: int = 1, n: int = 1):  # type: ignore[no-untyped-def]
    return NewEvent(
        "dispatch.acknowledged",
        at(20 + n),
        "dispatcher",
        {
            "payload_hash": "0" * 64,
            "version": n,
            "attempt": n,
            "status": status,
            "payment_sum": payment_sum,
            "currency_iso": currency,
            "parts_amount": 1,
        },
        message_id=mid,
        dedup_key=f"dispatch:{mid}:{n}",
    )


def project(db: Database, fold_rules: FoldRules, batch_size: int = 100) -> None:
    catch_up(db, fold_rules, grace_seconds=GRACE, batch_size=batch_size)


def verified(db: Database, fold_rules: FoldRules) -> None:
    """Replay folds the same log to the same rows, cut into batches of one or of many."""
    for size in (1, 1000):
        differences: list[Any] = []
        verify(db, fold_rules, grace_seconds=GRACE, batch_size=size, report=differences.append)
        assert differences == [], [d.line() for d in differences]


def state(db: Database, mid: str) -> Any:
    with db.read() as conn:
        return conn.execute(select(message_state).where(message_state.c.message_id == mid)).one()


def money(db: Database, status: str = "open") -> dict[tuple[str, str, str], tuple[Any, Any]]:
    """(subject, kind, origin) -> (amount_at_stake, currency) of the rows in ``status``."""
    with db.read() as conn:
        rows = conn.execute(select(mismatches).where(mismatches.c.status == status))
        return {(r.subject, r.kind, r.origin): (r.amount_at_stake, r.amount_currency) for r in rows}
