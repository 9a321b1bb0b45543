"""The dispatcher's documented guarantees (docs/dispatcher.md), each pinned so that removing
the code that keeps it fails a test:

- a request is started only if it can finish ``timeout`` + 2 s before its claim's lease
  ends, tested with a clock that moves between the claim and the send;
- redirects are never followed, so no answer can lead the token to another listener;
- a message is never sent an older state after a newer one, tested with the newer state
  projected while the older one is on the wire;
- of several dispatcher processes, exactly one sends the single probe of an open circuit.

Every test runs on SQLite and PostgreSQL; the listeners are real aiohttp servers on
127.0.0.1, and time is the dispatcher's injected clock (nothing here sleeps; the
two-process test runs on the real clock, with the circuit opened an hour in the past).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.web_request import BaseRequest
from sqlalchemy import select

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.dispatch import dispatcher as dispatcher_module
from pipeline.dispatch.delivery import LEASE_MARGIN
from pipeline.dispatch.dispatcher import Dispatcher
from pipeline.dispatch.tables import partner_circuits
from pipeline.eventlog import NewEvent, append
from pipeline.projector.runner import run_project
from pipeline.projector.tables import message_state, mismatches
from pipeline.sandbox.config import SandboxConfig
from pipeline.sandbox.runner import running_sandbox
from tests.dispatch.helpers import (
    TOKEN,
    TOKEN_ENV,
    Clock,
    delivery,
    dispatch_process,
    make_settings,
    put_state,
    received,
    write_config,
)
from tests.dispatch.listener import Listener, listening

CALLBACK = f"/smsprovider/status/callback/{TOKEN}"
#: How long the held request may wait in real time: far beyond what the test needs, only a
#: bound so that a regression fails instead of hanging.
WAIT = 60.0


# -- the lease deadline ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("after_claim", "sent"),
    [
        # lease 60, timeout 5, margin 2: the last moment a request may start is claim + 53 s.
        (0.0, True),
        (52.0, True),
        (53.0, True),
        (54.0, False),
        (120.0, False),
    ],
)
async def test_a_request_starts_only_if_it_can_finish_two_seconds_before_the_lease_ends(
    db: Database, monkeypatch: pytest.MonkeyPatch, after_claim: float, sent: bool
) -> None:
    assert LEASE_MARGIN == 2.0
    clock = Clock()
    real_claim = dispatcher_module.claim_due_deliveries

    def claim_then_time_passes(*args: Any, **kwargs: Any) -> Any:
        # The claim commits its lease at ``now``; then the clock moves on before any send,
        # as it does when a claim waits behind slow requests on a loaded machine.
        claim = real_claim(*args, **kwargs)
        clock.advance(after_claim)
        return claim

    monkeypatch.setattr(dispatcher_module, "claim_due_deliveries", claim_then_time_passes)
    put_state(db, "m1")
    async with listening() as altegio:
        settings = make_settings(altegio.url, timeout=5, lease=60)
        summary = await Dispatcher(db, settings, clock=clock).run()
    row = delivery(db, "m1")
    if sent:
        assert (altegio.connections, len(altegio.requests)) == (1, 1)
        assert (summary.requests, summary.acknowledged) == (1, 1)
        return
    assert (altegio.connections, altegio.requests) == (0, []), "a request outlived its lease"
    assert (summary.requests, summary.deferred) == (0, 1)
    # Given back at once, without counting an attempt, and sent by the next run.
    assert (row.lease_until, row.attempts, row.acked_hash) == (None, 0, None)
    monkeypatch.setattr(dispatcher_module, "claim_due_deliveries", real_claim)
    async with listening() as altegio:
        settings = make_settings(altegio.url, timeout=5, lease=60)
        again = await Dispatcher(db, settings, clock=clock).run()
    assert (again.acknowledged, len(altegio.requests)) == (1, 1)


# -- redirects ---------------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
async def test_a_redirect_is_not_followed_and_the_listener_it_names_gets_nothing(
    db: Database, status: int
) -> None:
    put_state(db, "r1")
    async with listening() as elsewhere:

        async def redirect(request: BaseRequest, listener: Listener) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": elsewhere.url + CALLBACK})

        async with listening(redirect) as altegio:
            # Both listeners are on 127.0.0.1, which the URL policy allows on any port: only
            # not following redirects keeps the token from the second one.
            settings = make_settings(altegio.url)
            summary = await Dispatcher(db, settings, clock=Clock()).run()
    assert (elsewhere.connections, elsewhere.requests) == (0, []), "the redirect was followed"
    assert len(altegio.requests) == 1
    assert (summary.requests, summary.parked, summary.acknowledged) == (1, 1, 0)
    row = delivery(db, "r1")
    assert (row.state, row.last_status_code, row.acked_hash) == ("parked", status, None)
    with db.read() as conn:
        [flag] = conn.execute(
            select(mismatches).where(mismatches.c.status == "open", mismatches.c.message_id == "r1")
        ).all()
    assert flag.kind == "altegio_rejected" and str(status) in str(flag.detail)
    assert TOKEN not in str(flag.detail)


# -- never an older state after a newer one ----------------------------------------------------

T0 = datetime(2026, 1, 15, 10, 30, tzinfo=UTC)


def _pipeline_settings(url: str, **dispatcher: Any) -> Settings:
    return Settings.model_validate(
        {
            "billing": {"tariffs": [{"prefix": "+7", "price_per_part": "2.25", "currency": "RUB"}]},
            "dispatcher": {"backoff_base": 1, "backoff_cap": 4, **dispatcher},
            "altegio": {
                "base_url": url,
                "insecure_hosts": ["127.0.0.1"],
                "partners": {"default": {"token_env": TOKEN_ENV}},
            },
        }
    )


def _message(message_id: str) -> list[NewEvent]:
    return [
        NewEvent(
            type="message.accepted",
            occurred_at=T0,
            source="test",
            message_id=message_id,
            payload={
                "partner": "default",
                "phone": "+79161234567",
                "text": "Your appointment is at 15:00",
                "channel": "sms",
                "dispatch_type": "service",
                "free": False,
            },
        ),
        NewEvent(
            type="carrier.submitted",
            occurred_at=T0,
            source="test",
            message_id=message_id,
            carrier="mts",
            carrier_message_id=f"c-{message_id}",
            payload={"parts": 1},
        ),
    ]


def _report(message_id: str, status: int, raw: str, minutes: int) -> NewEvent:
    return NewEvent(
        type="carrier.status",
        occurred_at=T0 + timedelta(minutes=minutes),
        source="test",
        carrier="mts",
        carrier_message_id=f"c-{message_id}",
        payload={"format": "generic", "raw_status": raw, "status": status, "raw": {}},
    )


def _holding(answer: int) -> tuple[Callable[..., Any], asyncio.Event, list[int]]:
    """A stand-in for Altegio that holds the first request until ``release`` is set, then
    answers it ``answer``; later requests are acknowledged. ``statuses`` lists, in arrival
    order, the status of every item of every request."""
    release = asyncio.Event()
    statuses: list[int] = []

    async def handler(request: BaseRequest, listener: Listener) -> web.StreamResponse:
        body = listener.requests[-1].body
        statuses.extend(item["status"] for item in json.loads(body))
        if len(listener.requests) == 1:
            await asyncio.wait_for(release.wait(), WAIT)
            if answer != 200:
                return web.json_response({"success": False, "meta": {}}, status=answer)
        return web.json_response({"success": True, "data": None, "meta": []})

    return handler, release, statuses


@pytest.mark.parametrize("held_answer", [200, 503])
async def test_a_newer_state_projected_while_the_older_is_in_flight_goes_after_it_and_the_older_never_again(  # noqa: E501
    db: Database, monkeypatch: pytest.MonkeyPatch, held_answer: int
) -> None:
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    handler, release, statuses = _holding(held_answer)
    clock = Clock()
    async with listening(handler) as altegio:
        settings = _pipeline_settings(altegio.url, timeout=WAIT, lease=WAIT * 2)
        append(db, [*_message("m1"), _report("m1", 8, "ACCEPTD", 1)])
        run_project(db, settings)
        first = asyncio.create_task(Dispatcher(db, settings, clock=clock, dispatcher_id="a").run())
        await asyncio.wait_for(altegio.arrived.wait(), WAIT)  # status 8 is on the wire

        # The newer state is projected while the older one is held.
        append(db, [_report("m1", 1, "DELIVRD", 2)])
        await asyncio.to_thread(run_project, db, settings)
        # Another dispatcher now finds the message leased: it must send nothing yet.
        meanwhile = await Dispatcher(db, settings, clock=clock, dispatcher_id="b").run()
        assert (meanwhile.requests, len(altegio.requests)) == (0, 1)

        release.set()
        held = await first
        assert held.requests == 1
        assert (held.acknowledged, held.retried) == ((1, 0) if held_answer == 200 else (0, 1))
        clock.advance(10)  # past any backoff
        rest = await Dispatcher(db, settings, clock=clock, dispatcher_id="b").run(until_idle=True)
        clock.advance(10)
        idle = await Dispatcher(db, settings, clock=clock, dispatcher_id="a").run(until_idle=True)
    assert statuses == [8, 1], "the older state was sent after the newer one"
    assert (rest.acknowledged, idle.claimed) == (1, 0)
    with db.read() as conn:
        state = conn.execute(select(message_state).where(message_state.c.message_id == "m1")).one()
    row = delivery(db, "m1")
    assert (row.acked_hash, row.acked_version) == (state.payload_hash, state.version)


# -- one probe per open circuit, across processes ----------------------------------------------


async def test_two_dispatcher_processes_send_one_probe_for_an_open_circuit(
    db: Database, tmp_path: Path
) -> None:
    for n in range(20):
        put_state(db, f"c{n:02d}")
    database_url = db.engine.url.render_as_string(hide_password=False)
    # The circuit opens an hour ago (this process's clock), so its 10-minute cool-down is
    # over for the two processes, which run on the real clock: both find the probe due.
    clock = Clock(datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1))
    refusing = SandboxConfig(tokens=("the-right-one",), latency_ms=200)
    async with running_sandbox(refusing) as url:
        settings = make_settings(url, batch_size=5, concurrency=1, auth_cooldown=600)
        opened = await Dispatcher(db, settings, clock=clock).run(until_idle=True)
        assert opened.requests == 1 and opened.acknowledged == 0
        with db.read() as conn:
            [circuit] = conn.execute(select(partner_circuits)).all()
        assert circuit.state == "open"

        config = write_config(tmp_path, url, batch_size=5, auth_cooldown=600)
        results = await asyncio.gather(
            dispatch_process(config, database_url), dispatch_process(config, database_url)
        )
        seen = await received(url)
    outcomes = [r["outcome"] for r in seen["requests"]]
    assert outcomes == ["401", "401"], "exactly one probe after the request that opened it"
    # The winner's probe was refused (exit 1: held by the circuit); the other claimed nothing.
    assert sorted(code for code, _ in results) == [0, 1], results
    for _, out in results:
        assert TOKEN not in out
    with db.read() as conn:
        [circuit] = conn.execute(select(partner_circuits)).all()
    assert circuit.state == "open" and circuit.probe_at > datetime.now(UTC)
