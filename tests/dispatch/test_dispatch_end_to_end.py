"""From events to Altegio: the real projector builds message_state, the dispatcher sends it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.eventlog import NewEvent, append
from pipeline.projector.runner import run_project
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import TOKEN, TOKEN_ENV, Clock, received

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def _settings(url: str) -> Settings:
    return Settings.model_validate(
        {
            "billing": {"tariffs": [{"prefix": "+7", "price_per_part": "2.25", "currency": "RUB"}]},
            "altegio": {
                "base_url": url,
                "insecure_hosts": ["127.0.0.1"],
                "partners": {"default": {"token_env": TOKEN_ENV}},
            },
        }
    )


def _report(status: int, raw: str, minutes: int) -> NewEvent:
    return NewEvent(
        type="carrier.status",
        occurred_at=T0 + timedelta(minutes=minutes),
        source="test",
        carrier="mts",
        carrier_message_id="c-1",
        payload={"format": "generic", "raw_status": raw, "status": status, "raw": {}},
    )


async def test_projected_changes_reach_altegio_in_order_with_their_price(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    accepted = NewEvent(
        type="message.accepted",
        occurred_at=T0,
        source="test",
        message_id="232674",
        payload={
            "partner": "default",
            "phone": "+79161234567",
            "text": "Hello Anna, your appointment is at 15:00",
            "channel": "sms",
            "dispatch_type": "service",
            "free": False,
        },
    )
    submitted = NewEvent(
        type="carrier.submitted",
        occurred_at=T0,
        source="test",
        message_id="232674",
        carrier="mts",
        carrier_message_id="c-1",
        payload={"parts": 1},
    )
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        settings = _settings(url)
        append(db, [accepted, submitted, _report(8, "ACCEPTD", 1)])
        run_project(db, settings)
        first = await Dispatcher(db, settings, clock=Clock()).run(until_idle=True)
        append(db, [_report(1, "DELIVRD", 2)])
        run_project(db, settings)  # dispatch events in the log are folded without harm
        second = await Dispatcher(db, settings, clock=Clock()).run(until_idle=True)
        items = (await received(url))["items"]
    assert (first.acknowledged, second.acknowledged) == (1, 1)
    assert [(i["id"], i["status"]) for i in items] == [("232674", 8), ("232674", 1)]
    assert Decimal(str(items[-1]["payment_sum"])) == Decimal("2.25")
    assert items[-1]["currency_iso"] == "RUB" and items[-1]["parts_amount"] == 1
