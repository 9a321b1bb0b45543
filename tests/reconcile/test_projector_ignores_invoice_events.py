"""The invoice's header and closing events are not message facts: projecting them changes
no message and opens no mismatch (the projector's fold of ``carrier.invoiced`` is unchanged)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.domain.tariffs import TariffRule
from pipeline.eventlog import NewEvent, append
from pipeline.projector.derive import FoldRules
from pipeline.projector.fold import MESSAGE_EVENTS
from pipeline.projector.replay import live_checkpoint, verify
from pipeline.projector.runner import catch_up
from pipeline.projector.tables import message_state, mismatches
from tests.projector.events import accepted, report, submitted

RULES = FoldRules(tariffs=[TariffRule(prefix="+7", price_per_part=Decimal("2.27"), currency="RUB")])
GRACE = 600.0


def _snapshot(db: Database) -> tuple[list, list]:
    with db.read() as conn:
        states = [tuple(r) for r in conn.execute(select(message_state).order_by("message_id"))]
        opened = [tuple(r) for r in conn.execute(select(mismatches).order_by(mismatches.c.id))]
    return states, opened


def _invoice_events() -> list[NewEvent]:
    # The same carrier and a message id in the payload: nothing of either may be read.
    when = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
    header = {
        "invoice_id": "INV-1",
        "carrier": "mts",
        "version": 1,
        "period_from": "2026-01-15T00:00:00Z",
        "period_to": "2026-01-16T00:00:00Z",
        "currency": "RUB",
        "total": "0.35",
        "lines": 1,
        "sha256": "0" * 64,
        "message_id": "m1",
    }
    closed = {"invoice_id": "INV-1", "carrier": "mts", "version": 1}
    return [
        NewEvent("carrier.invoice", when, "test", header, carrier="mts", dedup_key="invoice:h"),
        NewEvent(
            "carrier.invoice_closed", when, "test", closed, carrier="mts", dedup_key="invoice:c"
        ),
        NewEvent(
            "carrier.invoice",
            when,
            "test",
            header,
            carrier="mts",
            carrier_message_id="zz",
            dedup_key="invoice:h2",
        ),
    ]


def test_the_header_and_closing_types_are_not_message_events() -> None:
    assert not {"carrier.invoice", "carrier.invoice_closed"} & MESSAGE_EVENTS


def test_projecting_invoice_headers_and_closings_changes_nothing_and_opens_no_mismatch(
    db: Database,
) -> None:
    append(db, [accepted("m1"), submitted("m1", "c1"), report("c1", 1, 3)])
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=100)
    before = _snapshot(db)
    assert before[0], "the message was projected"
    result = append(db, _invoice_events())
    last = result.positions[-1]
    catch_up(db, RULES, grace_seconds=GRACE, batch_size=100)
    assert _snapshot(db) == before
    assert live_checkpoint(db) >= last, "the projector read past them"
    assert verify(db, RULES, grace_seconds=GRACE, batch_size=100)[1] == 0
