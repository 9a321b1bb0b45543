"""Every mismatch the dispatcher opens names the revenue it puts at risk: the message's
``payment_sum`` Altegio has not acknowledged, or, for a partner's circuit, the exact sum of
the partner's, per currency (``pipeline/dispatch/at_stake.py``), on both engines."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.dispatch.at_stake import at_stake_detail, message_at_stake, partner_totals_query
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.model import ClaimedItem
from pipeline.mismatches import mismatches
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import TOKEN, Clock, make_settings, put_state


def _open(db: Database, kind: str) -> dict[str, Any]:
    """The open rows of ``kind`` by subject: (amount_at_stake, amount_currency, detail)."""
    with db.read() as conn:
        rows = conn.execute(
            select(
                mismatches.c.subject,
                mismatches.c.amount_at_stake,
                mismatches.c.amount_currency,
                mismatches.c.detail,
            ).where(mismatches.c.kind == kind, mismatches.c.status == "open")
        ).all()
    return {subject: (amount, currency, detail) for subject, amount, currency, detail in rows}


async def test_a_parked_message_puts_its_payment_sum_at_stake(db: Database) -> None:
    put_state(db, "f1", amount="4.50", currency="RUB")
    put_state(db, "f2", amount="12", currency="JPY")
    put_state(db, "s1", amount="1234567.89", currency="EUR", url="http://10.0.0.1/x")
    config = SandboxConfig(tokens=("other",), forbidden_tokens=(TOKEN,))
    async with running_sandbox(config) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert summary.parked == 3
    forbidden = _open(db, "altegio_forbidden")
    assert forbidden["f1"][:2] == (Decimal("4.50"), "RUB")
    assert forbidden["f2"][:2] == (Decimal("12"), "JPY")
    assert (forbidden["f1"][2]["amount_at_stake"], forbidden["f1"][2]["currency"]) == (
        "4.50",
        "RUB",
    )
    # Refused before any request: the money is at stake all the same.
    [(amount, currency, detail)] = _open(db, "callback_url_rejected").values()
    assert (amount, currency, detail["amount_at_stake"]) == (
        Decimal("1234567.89"),
        "EUR",
        "1234567.89",
    )


async def test_an_expired_message_puts_its_payment_sum_at_stake(db: Database) -> None:
    put_state(db, "e1", amount="7.77", currency="RUB")
    clock = Clock()
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults={"503": 1.0})) as url:
        settings = make_settings(url, backoff_base=10, backoff_cap=20, max_age=60)
        assert (await Dispatcher(db, settings, clock=clock).run()).retried == 1
        clock.advance(61)
        assert (await Dispatcher(db, settings, clock=clock).run()).expired == 1
    [(amount, currency, detail)] = _open(db, "delivery_expired").values()
    assert (amount, currency, detail["amount_at_stake"]) == (Decimal("7.77"), "RUB", "7.77")


async def _acknowledge(db: Database, message_id: str, amount: str) -> None:
    put_state(db, message_id, amount=amount, currency="RUB")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        assert (await Dispatcher(db, make_settings(url), clock=Clock()).run()).acknowledged == 1


async def _refuse_the_token(db: Database) -> None:
    async with running_sandbox(SandboxConfig(tokens=("the-right-one",))) as url:
        settings = make_settings(url, auth_cooldown=600)
        summary = await Dispatcher(db, settings, clock=Clock()).run(until_idle=True)
    assert summary.circuit >= 1 and summary.acknowledged == 0


async def test_an_open_circuit_puts_the_partners_unacknowledged_sum_at_stake(
    db: Database,
) -> None:
    await _acknowledge(db, "old", "9.99")  # Altegio has it: not at stake
    for message_id, amount in (("c1", "0.10"), ("c2", "0.20"), ("c3", "1234567.89")):
        put_state(db, message_id, amount=amount, currency="RUB")
    put_state(db, "p1", amount="5.00", currency="RUB", partner="salon")  # another partner
    await _refuse_the_token(db)
    [(amount, currency, detail)] = _open(db, "partner_token_invalid").values()
    assert (amount, currency) == (Decimal("1234568.19"), "RUB")
    assert detail["amount_at_stake"] == "1234568.19" and "at_stake_by_currency" not in detail
    # The other partner's message has its own row, with its own price.
    assert _open(db, "partner_not_configured")["p1"][:2] == (Decimal("5.00"), "RUB")


async def test_a_circuit_over_several_currencies_lists_them_and_leaves_the_columns_empty(
    db: Database,
) -> None:
    put_state(db, "r1", amount="0.10", currency="RUB")
    put_state(db, "r2", amount="0.20", currency="RUB")
    put_state(db, "u1", amount="1.10", currency="EUR")
    put_state(db, "u2", amount="2.25", currency="EUR")
    await _refuse_the_token(db)
    [(amount, currency, detail)] = _open(db, "partner_token_invalid").values()
    assert (amount, currency) == (None, None)
    assert detail["at_stake_by_currency"] == {"EUR": "3.35", "RUB": "0.30"}
    assert "amount_at_stake" not in detail


async def test_a_refused_probe_brings_the_partners_sum_up_to_date(db: Database) -> None:
    put_state(db, "c1", amount="0.10", currency="RUB")
    clock = Clock()
    async with running_sandbox(SandboxConfig(tokens=("the-right-one",))) as url:
        settings = make_settings(url, auth_cooldown=600)
        await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert _open(db, "partner_token_invalid")["partner:default"][0] == Decimal("0.10")
        put_state(db, "c2", amount="0.20", currency="RUB")
        clock.advance(601)
        probe = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
    assert (probe.requests, probe.circuit) == (1, 1)
    assert _open(db, "partner_token_invalid")["partner:default"][:2] == (Decimal("0.30"), "RUB")


async def test_a_wrong_callback_url_puts_the_partners_sum_at_stake(db: Database) -> None:
    ids = {f"w{n}": f"{n}.01" for n in range(4)}
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), unknown_ids=set(ids))) as url:
        for message_id, amount in ids.items():
            put_state(
                db, message_id, amount=amount, url=f"{url}/smsprovider/status/callback/{TOKEN}"
            )
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert summary.circuit == 4
    [(amount, currency, detail)] = _open(db, "altegio_not_found").values()
    assert (amount, currency, detail["url_wrong"]) == (Decimal("6.04"), "RUB", True)


def test_the_partner_sum_reads_the_backlog_through_the_state_index(db: Database) -> None:
    query = partner_totals_query(db.backend, "default")
    with db.read() as conn:
        compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
        if db.backend.name == "sqlite":
            plan = [row[-1] for row in conn.exec_driver_sql(f"EXPLAIN QUERY PLAN {compiled}")]
            assert any("deliveries USING INDEX ix_deliveries_state" in s for s in plan), plan
            assert not any(step.startswith("SCAN") for step in plan), plan
        else:
            # PostgreSQL's planner chooses by table statistics (an empty table is scanned);
            # with scans priced out it must still find an index that serves the query.
            conn.exec_driver_sql("SET LOCAL enable_seqscan = off")
            plan = [row[0] for row in conn.exec_driver_sql(f"EXPLAIN {compiled}")]
            assert any("ix_deliveries_state" in step for step in plan), plan


def _item(payment_sum: Decimal | None, currency: str | None) -> ClaimedItem:
    now = datetime(2026, 1, 15, tzinfo=UTC)
    return ClaimedItem("m", "default", None, 1, True, payment_sum, currency, 1, "h", 1, 1, 0, now)


def test_a_message_without_a_price_puts_nothing_at_stake() -> None:
    assert message_at_stake(_item(None, None)) == {}
    assert message_at_stake(_item(Decimal("4.50"), "RUB")) == {
        "amount_at_stake": "4.50",
        "currency": "RUB",
    }


def test_sums_per_currency_become_one_amount_or_a_map() -> None:
    assert at_stake_detail({}) == {}
    assert at_stake_detail({"RUB": Decimal("0.30000000")}) == {
        "amount_at_stake": "0.30",
        "currency": "RUB",
    }
    assert at_stake_detail({"RUB": Decimal("0.3"), "JPY": Decimal("12")}) == {
        "at_stake_by_currency": {"JPY": "12", "RUB": "0.30"}
    }
