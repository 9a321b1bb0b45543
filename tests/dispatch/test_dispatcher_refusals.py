"""Every kind of answer Altegio can give, and what the dispatcher makes of it."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import select

from pipeline.db.engine import Database
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.tables import partner_circuits
from pipeline.projector.tables import mismatches
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


def _open(db: Database, kind: str) -> list[dict]:  # type: ignore[type-arg]
    with db.read() as conn:
        rows = conn.execute(
            select(mismatches).where(mismatches.c.kind == kind, mismatches.c.status == "open")
        ).all()
    return [row._asdict() for row in rows]


async def test_a_validation_refusal_is_bisected_and_only_the_offender_parked(db: Database) -> None:
    for n in range(7):
        put_state(db, f"v{n}")
    put_state(db, " ")  # Altegio refuses an empty id; nothing here checks that first
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
        accepted = {i["id"] for i in (await received(url))["items"]}
    assert (summary.acknowledged, summary.parked) == (7, 1)
    assert accepted == {f"v{n}" for n in range(7)}
    assert summary.requests <= 1 + 2 * 3  # one batch of 8, then a path of halves
    [flag] = _open(db, "altegio_validation")
    assert flag["message_id"] == " " and "id must not be empty" in flag["detail"]["error"]
    assert flag["detail"]["altegio_error_code"] == 10
    assert delivery(db, " ").state == "parked"

    # Parked stays parked until the payload changes.
    again = await _run_against_nothing(db)
    assert again.claimed == 0


async def _run_against_nothing(db: Database):  # type: ignore[no-untyped-def]
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        return await Dispatcher(db, make_settings(url), clock=Clock()).run()


async def test_unknown_ids_are_found_by_bisection_and_parked_not_found(db: Database) -> None:
    for n in range(8):
        put_state(db, f"n{n}")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), unknown_ids={"n5"})) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert (summary.acknowledged, summary.parked) == (7, 1)
    assert [f["message_id"] for f in _open(db, "altegio_not_found")] == ["n5"]


async def test_a_callback_url_answering_404_to_everything_opens_the_circuit_not_a_storm(
    db: Database,
) -> None:
    # A wrong path never leaves (tests/hostile/test_callback_urls.py); a callback URL of the
    # right shape that Altegio answers 404 for every id is what the URL rule is for.
    ids = {f"w{n}" for n in range(16)}
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), unknown_ids=ids)) as url:
        for message_id in sorted(ids):
            put_state(db, message_id, url=f"{url}/smsprovider/status/callback/{TOKEN}")
        clock = Clock()
        settings = make_settings(url, auth_cooldown=600)
        summary = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert summary.requests == 3  # the batch and its two halves, nothing more
        assert summary.circuit == 16 and summary.parked == 0
        [flag] = _open(db, "altegio_not_found")
        assert flag["subject"] == "partner:default" and flag["detail"]["url_wrong"] is True
        clock.advance(60)
        assert (await Dispatcher(db, settings, clock=clock).run()).requests == 0


async def test_forbidden_parks_the_batch(db: Database) -> None:
    put_state(db, "f1")
    put_state(db, "f2")
    async with running_sandbox(SandboxConfig(tokens=("other",), forbidden_tokens=(TOKEN,))) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert (summary.parked, summary.requests) == (2, 1)
    assert {f["message_id"] for f in _open(db, "altegio_forbidden")} == {"f1", "f2"}


async def test_an_invalid_token_opens_the_circuit_then_one_probe_closes_it(db: Database) -> None:
    for n in range(40):
        put_state(db, f"t{n:02d}")
    clock = Clock()
    async with running_sandbox(SandboxConfig(tokens=("the-right-one",))) as url:
        settings = make_settings(url, batch_size=5, concurrency=2, auth_cooldown=600)
        first = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        # At most the requests already under way when the first 401 came back.
        assert first.requests <= 2 and first.acknowledged == 0
        assert len(_open(db, "partner_token_invalid")) == 1
        for _ in range(3):
            clock.advance(120)
            assert (await Dispatcher(db, settings, clock=clock).run(until_idle=True)).requests == 0
        clock.advance(600)
        probe = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert (probe.requests, probe.circuit) == (1, 1)  # one probe of one status, refused
        assert (await received(url))["requests"][-1]["outcome"] == "401"

    # The token is fixed; after the next cool-down the probe succeeds and the rest follow.
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        settings = make_settings(url, batch_size=5, concurrency=2, auth_cooldown=600)
        clock.advance(601)
        healed = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert healed.acknowledged == 40
    assert _open(db, "partner_token_invalid") == []
    with db.read() as conn:
        assert conn.execute(select(partner_circuits.c.state)).scalar() == "closed"


@pytest.mark.parametrize("fault", ["429s", "429date"])
async def test_retry_after_is_honoured_in_both_forms(db: Database, fault: str) -> None:
    put_state(db, "r1")
    config = SandboxConfig(tokens=(TOKEN,), faults={fault: 1.0}, retry_after_s=30)
    clock = Clock()
    # The sandbox tells time by the dispatcher's clock, so the date form names exactly
    # 30 s after the dispatcher's now; without Retry-After the wait would be the jittered
    # backoff of at most backoff_base (1 s) instead.
    async with running_sandbox(config, clock=clock) as url:
        summary = await Dispatcher(db, make_settings(url, backoff_cap=3600), clock=clock).run()
    assert summary.retried == 1
    row = delivery(db, "r1")
    wait = (row.next_attempt_at - clock.now).total_seconds()
    assert wait == 30
    assert row.state == "pending" and row.last_status_code == 429 and row.failures == 1


async def test_server_errors_and_timeouts_back_off_then_expire(db: Database) -> None:
    put_state(db, "e1")
    clock = Clock()
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults={"503": 1.0})) as url:
        settings = make_settings(url, backoff_base=10, backoff_cap=20, max_age=60)
        dispatcher_run = Dispatcher(db, settings, clock=clock).run
        assert (await dispatcher_run()).retried == 1
        assert (await dispatcher_run()).claimed == 0  # not due yet
        clock.advance(21)
        assert (await dispatcher_run()).retried == 1
        clock.advance(41)
        assert (await dispatcher_run()).expired == 1
    assert delivery(db, "e1").state == "expired"
    assert len(_open(db, "delivery_expired")) == 1

    async with running_sandbox(SandboxConfig(tokens=(TOKEN,), faults={"hang": 1.0})) as url:
        put_state(db, "e1", status=1)  # a new payload starts afresh
        settings = make_settings(url, timeout=0.2)
        summary = await Dispatcher(db, settings, clock=clock).run()
        assert summary.retried == 1
        assert delivery(db, "e1").last_error == "timed out"


async def test_a_callback_url_off_the_allow_list_is_never_called(db: Database) -> None:
    put_state(db, "s1", url=f"http://169.254.169.254/smsprovider/status/callback/{TOKEN}")
    put_state(db, "s2", url="https://app.alteg.io.evil.example/smsprovider/status/callback/x")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert (summary.requests, summary.parked) == (0, 2)
    flags = _open(db, "callback_url_rejected")
    assert {f["message_id"] for f in flags} == {"s1", "s2"}
    assert all(TOKEN not in str(f["detail"]) for f in flags)


async def test_an_unconfigured_partner_is_a_mismatch_not_a_crash(db: Database) -> None:
    put_state(db, "p1", partner="nobody")
    put_state(db, "p2")
    async with running_sandbox(SandboxConfig(tokens=(TOKEN,))) as url:
        summary = await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert (summary.acknowledged, summary.retried) == (1, 1)
    [flag] = _open(db, "partner_not_configured")
    assert flag["message_id"] == "p1" and "'nobody' is not configured" in flag["detail"]["error"]


async def test_the_token_appears_in_no_log_line_event_or_row(
    db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from pipeline import logsafe

    logsafe.install()
    caplog.set_level(logging.DEBUG)
    put_state(db, "k1")
    put_state(db, "k2", url=f"http://10.0.0.1/smsprovider/status/callback/{TOKEN}")
    put_state(db, "k3", url=f"http://127.0.0.1:1/smsprovider/status/callback/{TOKEN}")
    config = SandboxConfig(tokens=("not-it",), faults={})
    async with running_sandbox(config) as url:
        await Dispatcher(db, make_settings(url), clock=Clock()).run()
    assert caplog.records, "the refusals were logged"
    assert TOKEN not in caplog.text
    with db.read() as conn:
        dump = " ".join(
            str(row._asdict())
            for table in ("events", "deliveries", "mismatches", "partner_circuits")
            for row in conn.execute(select(mismatches.metadata.tables[table])).all()
        )
    assert "callback/***" in dump and TOKEN not in dump
