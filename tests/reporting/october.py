"""A small October of traffic whose every figure is worked out by hand in
tests/reporting/test_doc_queries.py (the queries of docs/reporting.md run over it).

Partners ``acme`` and ``globex``; carriers ``mts`` (Russia, rate card 0.50 RUB a part) and
``beeline`` (Armenia, 0.80 RUB a part); sold at 2.27 RUB a part to +7 and 3.00 RUB to
+374; one rate, ``EUR,RUB,100`` for 2026-10-01, and none for 2026-10-31.

| message | partner | accepted (UTC) | carrier | parts | status | price | carrier cost |
|---|---|---|---|---|---|---|---|
| a1 | acme | 10-01 09:00 | mts | 1 | delivered | 2.27 | invoiced 0.62 (cost_mismatch 0.12) |
| a2 | acme | 10-01 10:00 | mts | 2 | not delivered | 4.54 | reported 0.90 |
| a3 | acme | 10-01 11:00 | beeline | 1 | delivered | 3.00 | expected 0.80 |
| a4 | acme | 10-31 23:59 | mts | 1 | in progress | 0 (free) | expected 0.50 |
| g1 | globex | 10-01 12:00 | mts | 1 | rejected | 2.27 | invoiced 0.50 (billed_but_rejected) |
| a5 | acme | 09-30 23:59:59 | mts | 1 | delivered | 2.27 | expected 0.50 (September) |
| a6 | acme | 11-01 00:00 | mts | 1 | delivered | 2.27 | expected 0.50 (November) |

Altegio acknowledged a1 (2.27 RUB) and a3 (3.00 RUB).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import NewEvent
from pipeline.projector.derive import FoldRules
from pipeline.projector.finance import CarrierTerms, FinanceRules
from tests.finance.money_events import acked, header, line, rate
from tests.projector.events import T0, accepted, report, submitted

RU, AM = "+79161234567", "+37477123456"
LONG = "x" * 200  # two GSM parts


def minute(text: str) -> float:
    """Minutes from the builders' T0 to a UTC time written ``YYYY-MM-DD HH:MM[:SS]``."""
    return (datetime.fromisoformat(text).replace(tzinfo=UTC) - T0).total_seconds() / 60


def october_rules() -> FoldRules:
    def card(prefix: str, price: str) -> CarrierTerms:
        return CarrierTerms(
            rates=(TariffRule(prefix=prefix, price_per_part=Decimal(price), currency="RUB"),),
            charge_on="submitted",
            tolerance_abs=Decimal("0.01"),
        )

    return FoldRules(
        tariffs=[
            TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB"),
            TariffRule(prefix="+374", price_per_part=Decimal("3.00"), currency="RUB"),
        ],
        finance=FinanceRules(
            carriers={"mts": card("+7", "0.50"), "beeline": card("+374", "0.80")},
            reporting_currency="EUR",
        ),
    )


def _sent(
    mid: str, when: str, *, carrier: str = "mts", phone: str = RU, partner: str = "acme",
    status: int | None = None, text: str = "Hello", free: bool = False, **dlr: str,
) -> list[NewEvent]:  # fmt: skip
    start = minute(when)
    events = [
        accepted(mid, start, phone=phone, partner=partner, text=text, free=free),
        submitted(mid, f"c-{mid}", start + 0.1, carrier=carrier),
    ]
    if status is not None:
        events.append(report(f"c-{mid}", status, start + 0.2, carrier=carrier, **dlr))
    return events


def october_log() -> list[NewEvent]:
    inv_day = minute("2026-10-02 08:00")
    return [
        rate("2026-10-01", "EUR", "RUB", "100"),
        *_sent("a1", "2026-10-01 09:00", status=1),
        *_sent("a2", "2026-10-01 10:00", status=2, text=LONG, cost="0.90", currency="RUB",
               cost_scope="message"),
        *_sent("a3", "2026-10-01 11:00", carrier="beeline", phone=AM, status=1),
        *_sent("a4", "2026-10-31 23:59", free=True),
        *_sent("g1", "2026-10-01 12:00", partner="globex", status=16),
        *_sent("a5", "2026-09-30 23:59:59", status=1),
        *_sent("a6", "2026-11-01 00:00", status=1),
        acked("a1", "2.27"),
        acked("a3", "3.00"),
        line("INV-10", 1, "0.62", cmid="c-a1", minute=inv_day),
        line("INV-10", 2, "0.50", cmid="c-g1", minute=inv_day),
        header("INV-10", total="1.12", lines=2, days=(259, 290)),  # October
    ]  # fmt: skip
