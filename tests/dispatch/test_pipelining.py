"""The overlapped dispatcher: claims ahead, group-committed results, and what a crash or a
cancellation leaves behind (at-least-once, never out of order)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from pipeline.db.engine import Database
from pipeline.db.tables import events
from pipeline.dispatch import dispatcher as dispatcher_module
from pipeline.dispatch import record_queue as record_queue_module
from pipeline.dispatch.claim import claim_due_deliveries
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.outcome import Outcome
from pipeline.dispatch.record import Resolution, record_groups
from pipeline.dispatch.tables import deliveries
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import (
    START,
    TOKEN,
    Clock,
    delivery,
    make_settings,
    put_state,
    received,
)

LEASE = 60


def _claim(db: Database, *, limit: int, after: str | None = None, now=START, owner="t"):  # type: ignore[no-untyped-def]
    return claim_due_deliveries(
        db,
        dispatcher_id=owner,
        now=now,
        limit=limit,
        lease_seconds=LEASE,
        send_intermediate=True,
        auth_cooldown=600,
        after=after,
        ensure_rows=after is None,
    )


def _rows(db: Database) -> list[Any]:
    with db.read() as conn:
        return conn.execute(select(deliveries).order_by(deliveries.c.message_id)).all()


def test_a_pass_of_claims_walks_the_keys_in_order_and_leases_each_once(db: Database) -> None:
    for n in range(7):
        put_state(db, f"k{n}")
    first = _claim(db, limit=3)
    assert [i.message_id for i in first.items] == ["k0", "k1", "k2"]
    assert first.cursor == "k2"
    second = _claim(db, limit=3, after=first.cursor)
    assert [i.message_id for i in second.items] == ["k3", "k4", "k5"]
    third = _claim(db, limit=3, after=second.cursor)
    assert [i.message_id for i in third.items] == ["k6"]
    assert _claim(db, limit=3, after=third.cursor).items == []
    # A new pass from the start finds nothing: every row is leased.
    assert _claim(db, limit=10).items == []
    rows = _rows(db)
    assert {r.state for r in rows} == {"in_flight"} and {r.attempts for r in rows} == {1}
    assert first.items[0].attempt == 1 and first.items[0].first_pending_at == START
    # Once the leases run out the next pass takes them again, as a second attempt.
    later = _claim(db, limit=10, now=START + timedelta(seconds=LEASE))
    assert [i.attempt for i in later.items] == [2] * 7


def _ack(item: Any, owner: str) -> tuple[str, list[Resolution]]:
    outcome = Outcome(action="acknowledged", http_status=200)
    return owner, [Resolution(item=item, result="acknowledged", outcome=outcome, url="u")]


def test_a_group_never_lowers_an_acknowledged_version_whatever_its_order(db: Database) -> None:
    put_state(db, "g1")
    old_claim = _claim(db, limit=1, owner="a")  # version 1; its lease runs out
    [old] = old_claim.items
    put_state(db, "g1", status=1)
    later = START + timedelta(seconds=LEASE + 1)
    newer_claim = _claim(db, limit=1, now=later, owner="b")
    [new] = newer_claim.items
    assert (old.version, new.version) == (1, 2)
    # Both answers land in one group, the late answer to the old claim last.
    record_groups(db, [_ack(new, newer_claim.owner), _ack(old, old_claim.owner)], now=later)
    row = delivery(db, "g1")
    assert (row.acked_version, row.state, row.sent_version) == (2, "acknowledged", 2)
    assert row.lease_owner is None
    with db.read() as conn:
        logged = conn.scalar(
            select(func.count()).select_from(events).where(events.c.message_id == "g1")
        )
    assert logged == 2  # every attempt is recorded, the late one too


def test_an_acknowledgement_of_a_lost_lease_still_raises_the_version(db: Database) -> None:
    put_state(db, "h1")
    first = _claim(db, limit=1, owner="a")
    later = START + timedelta(seconds=LEASE + 1)
    retaken = _claim(db, limit=1, now=later, owner="b")  # the same payload, claimed again
    assert [i.message_id for i in retaken.items] == ["h1"]
    record_groups(db, [_ack(first.items[0], first.owner)], now=later)
    row = delivery(db, "h1")
    # The acknowledgement counts; the row still belongs to the claim that holds the lease.
    assert (row.acked_version, row.state, row.lease_owner) == (1, "in_flight", retaken.owner)


async def test_a_crash_between_send_and_record_resends_after_the_lease_in_order(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [f"c{n}" for n in range(5)]
    for message_id in ids:
        put_state(db, message_id, status=8)
    clock = Clock()

    def crash(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the process died before the commit")

    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        settings = make_settings(url, batch_size=5, lease=LEASE)
        with monkeypatch.context() as patch:
            patch.setattr(record_queue_module, "record_groups", crash)
            with pytest.raises(RuntimeError, match="died before the commit"):
                await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert len((await received(url))["items"]) == 5  # Altegio has them; we don't know
        for message_id in ids:
            put_state(db, message_id, status=1)  # a newer state meanwhile
        # The lease still stands: nothing is sent while the old request might be in flight.
        idle = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert (idle.claimed, idle.requests) == (0, 0)
        clock.advance(LEASE)
        again = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert again.acknowledged == 5
        seen = await received(url)
    for message_id in ids:
        assert [i["status"] for i in seen["items"] if i["id"] == message_id] == [8, 1]
        row = delivery(db, message_id)
        assert (row.state, row.acked_version, row.attempts) == ("acknowledged", 2, 2)


async def test_batches_claimed_ahead_are_given_back_when_the_run_is_cancelled(
    db: Database,
) -> None:
    for n in range(40):
        put_state(db, f"z{n:02d}")
    # One connection, batches of 2, a slow Altegio: the claimer runs ahead and fills the
    # queue while the first request waits.
    config = SandboxConfig(tokens=(TOKEN,), latency_ms=400)
    async with running_sandbox(config) as url:
        settings = make_settings(url, batch_size=2, concurrency=1, per_host_concurrency=1)
        run = asyncio.create_task(Dispatcher(db, settings, clock=Clock()).run(until_idle=True))
        limit = dispatcher_module.CLAIM_AHEAD + 1  # queued batches + the one being sent
        async with asyncio.timeout(60):
            while sum(r.state == "in_flight" for r in _rows(db)) < 2 * limit:
                await asyncio.sleep(0.01)
        run.cancel()
        with pytest.raises(asyncio.CancelledError):
            await run
        seen = await received(url)
    sent = {i["id"] for i in seen["items"]}
    for row in _rows(db):
        if row.state == "acknowledged":
            assert row.message_id in sent
        elif row.lease_owner is not None:
            # The request in flight when the run stopped: its answer is unknown, so the
            # lease stands and the message is sent again once it runs out.
            assert row.attempts == 1
        else:
            assert (row.state, row.attempts) == ("pending", 0), row
    leased = [r for r in _rows(db) if r.lease_owner is not None]
    assert len(leased) <= 2  # at most the one batch that was on the wire
    given_back = [r for r in _rows(db) if r.state == "pending" and r.lease_owner is None]
    assert len(given_back) >= 2 * (limit - 1)


async def test_an_acknowledgement_resolves_the_messages_open_dispatch_mismatch(
    db: Database,
) -> None:
    from pipeline.projector.tables import mismatches

    put_state(db, "u1")
    put_state(db, "u2")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), unknown_ids=("u1",))) as url:
        first = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert (first.acknowledged, first.parked) == (1, 1)

    def status_of_u1() -> list[tuple[str, str]]:
        with db.read() as conn:
            rows = conn.execute(
                select(mismatches.c.kind, mismatches.c.status).where(
                    mismatches.c.message_id == "u1"
                )
            ).all()
        return [tuple(r) for r in rows]  # type: ignore[misc]

    assert status_of_u1() == [("altegio_not_found", "open")]
    put_state(db, "u1", status=1)  # a new payload brings a parked message back
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        again = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert again.acknowledged == 1
    assert status_of_u1() == [("altegio_not_found", "resolved")]
