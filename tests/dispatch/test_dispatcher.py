"""The dispatcher against the real sandbox: batching, acknowledgements, order, resend."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import func, select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import (
    TOKEN,
    Clock,
    delivery,
    make_settings,
    put_state,
    received,
)


def _event_count(db: Database, event_type: str) -> int:
    with db.read() as conn:
        return conn.scalar(
            select(func.count()).select_from(events).where(events.c.type == event_type)
        )


async def test_changes_travel_in_batches_and_are_acknowledged_once(db: Database) -> None:
    for n in range(25):
        put_state(db, f"m{n:03d}")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        settings = make_settings(url, batch_size=10)
        summary = await Dispatcher(db, settings, clock=Clock()).run(until_idle=True)
        assert (summary.sent, summary.acknowledged, summary.requests) == (25, 25, 3)
        seen = await received(url)
        assert sorted(i["id"] for i in seen["items"]) == [f"m{n:03d}" for n in range(25)]
        assert sorted(r["items"] for r in seen["requests"]) == [5, 10, 10]

        again = await Dispatcher(db, settings, clock=Clock()).run(until_idle=True)
        assert again.requests == 0 and again.claimed == 0

        put_state(db, "m007", status=1)
        third = await Dispatcher(db, settings, clock=Clock()).run(until_idle=True)
        assert (third.acknowledged, third.requests) == (1, 1)
        last = (await received(url))["items"][-1]
        assert (last["id"], last["status"]) == ("m007", 1)
    row = delivery(db, "m007")
    assert row.state == "acknowledged" and row.acked_version == 2 and row.lease_owner is None
    assert _event_count(db, "dispatch.acknowledged") == 26


async def test_payment_sum_is_a_json_number_with_the_currency_decimals(db: Database) -> None:
    put_state(db, "rub", amount="4.50", currency="RUB", parts=2)
    put_state(db, "jpy", amount="12", currency="JPY")
    put_state(db, "bhd", amount="0.125", currency="BHD")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
        assert summary.acknowledged == 3
        items = {i["id"]: i for i in (await received(url))["items"]}
    # The sandbox refuses a payment_sum with more decimals than the currency allows, and
    # records what it parsed; the exact text is checked in test_payload.
    assert Decimal(str(items["rub"]["payment_sum"])) == Decimal("4.50")
    assert items["rub"]["parts_amount"] == 2
    assert items["jpy"]["currency_iso"] == "JPY"


async def test_send_intermediate_off_skips_sent_to_phone(db: Database) -> None:
    put_state(db, "a", status=8)
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        settings = make_settings(url, send_intermediate=False)
        assert (await Dispatcher(db, settings, clock=Clock()).run()).acknowledged == 1
        put_state(db, "a", status=4)
        assert (await Dispatcher(db, settings, clock=Clock()).run()).requests == 0
        put_state(db, "a", status=1)
        assert (await Dispatcher(db, settings, clock=Clock()).run()).acknowledged == 1
        statuses = [i["status"] for i in (await received(url))["items"]]
    assert statuses == [8, 1]


async def test_object_body_shape_sends_one_status_per_request(db: Database) -> None:
    for n in range(3):
        put_state(db, f"o{n}")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), shape="object")) as url:
        settings = make_settings(url, body_shape="object")
        summary = await Dispatcher(db, settings, clock=Clock()).run()
        assert (summary.acknowledged, summary.requests) == (3, 3)


async def test_a_message_is_never_sent_twice_at_once_or_older_after_newer(db: Database) -> None:
    """Payload changes between runs reach Altegio in order, each once."""
    ids = [f"x{n}" for n in range(12)]
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), latency_ms=5)) as url:
        settings = make_settings(url, batch_size=4, concurrency=3, per_host_concurrency=3)
        for status in (8, 4, 1):
            for message_id in ids:
                put_state(db, message_id, status=status)
            await Dispatcher(db, settings, clock=Clock()).run(until_idle=True)
        seen = await received(url)
    assert seen["stats"]["overlapping_ids"] == []
    for message_id in ids:
        assert [i["status"] for i in seen["items"] if i["id"] == message_id] == [8, 4, 1]


async def test_explain_shows_every_attempt_token_masked(db: Database) -> None:
    from pipeline.dispatch.explain import dispatch_section
    from pipeline.projector.explain import AsOf

    put_state(db, "ex1")
    clock = Clock()
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults={"503": 1.0})) as url:
        await Dispatcher(db, make_settings(url), clock=clock).run()
    clock.advance(10)
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        await Dispatcher(db, make_settings(url), clock=clock).run()
    with db.read() as conn:
        section = dispatch_section(conn, "ex1", AsOf())
    assert section is not None
    assert [line.split(" -> ")[1].split(" ")[0] for line in section.lines[:2]] == ["503:", "200:"]
    assert section.lines[-1].startswith("now: acknowledged, 2 attempt(s)")
    assert TOKEN not in str(section.rows) and "callback/***" in str(section.rows)
