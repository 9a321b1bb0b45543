"""A ``dispatch.acknowledged`` event says what Altegio acknowledged: the payload as sent,
money as decimal text (finance folds revenue from it), on both engines."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import TOKEN, Clock, make_settings, put_state, received


def _payloads(db: Database, event_type: str) -> dict[str, dict[str, Any]]:
    with db.read() as conn:
        rows = conn.execute(
            select(events.c.message_id, events.c.payload).where(events.c.type == event_type)
        ).all()
    return {message_id: payload for message_id, payload in rows}


async def test_an_acknowledged_event_carries_the_payload_sent_with_money_as_text(
    db: Database,
) -> None:
    put_state(db, "rub", status=1, amount="4.50", currency="RUB", parts=3)
    put_state(db, "jpy", status=8, amount="12", currency="JPY", parts=1)
    put_state(db, "bhd", status=2, amount="0.125", currency="BHD", parts=2)
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
        sent = {item["id"]: item for item in (await received(url))["items"]}
    assert summary.acknowledged == 3
    acked = _payloads(db, "dispatch.acknowledged")
    shown = {
        m: (p["status"], p["payment_sum"], p["currency_iso"], p["parts_amount"])
        for m, p in acked.items()
    }
    assert shown == {
        "rub": (1, "4.50", "RUB", 3),
        "jpy": (8, "12", "JPY", 1),
        "bhd": (2, "0.125", "BHD", 2),
    }
    for message_id, payload in acked.items():
        # What the event says is what Altegio got.
        assert payload["currency_iso"] == sent[message_id]["currency_iso"]
        assert payload["parts_amount"] == sent[message_id]["parts_amount"]
        assert payload["status"] == sent[message_id]["status"]


async def test_a_failed_event_carries_the_payload_it_tried(db: Database) -> None:
    put_state(db, "f1", status=16, amount="0.00", currency="RUB", parts=2)
    async with running_sandbox(SandboxConfig(tokens=("other",), forbidden_tokens=(TOKEN,))) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert summary.parked == 1
    [payload] = _payloads(db, "dispatch.failed").values()
    assert (payload["status"], payload["payment_sum"], payload["currency_iso"]) == (
        16,
        "0.00",
        "RUB",
    )
    assert payload["parts_amount"] == 2 and payload["result"] == "parked"
