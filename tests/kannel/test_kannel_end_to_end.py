"""A real Kannel between the sender and smsrecon: what its dlr-url callbacks become.

The path under test is the production one: a message goes into Kannel's smsbox through
``/cgi-bin/sendsms`` with ``dlr-mask=31`` and the documented dlr-url template, bearerbox
submits it over SMPP to an SMSC simulator that answers (and sends receipts) the way the test
chose for that destination, and smsbox calls smsrecon's ingest app back, once per report.
What the test asserts is what the real callbacks produced in the events table, on SQLite and
on PostgreSQL. Kannel 1.4.5 does all of this in well under a second.

Without Kannel installed the test is skipped, loudly; under ``CI`` it fails instead, because
there the gateway must be tested (``.ci/run`` installs it).
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, quote, urlencode

import aiohttp
import pytest
from aiohttp import web
from yarl import URL

from pipeline.config import Settings
from pipeline.db.engine import Database
from pipeline.eventlog import StoredEvent, read
from pipeline.ingest.server import build_ingest_app
from pipeline.smsc.simulator import Outcome, SmscSimulator, Status
from tests.kannel.gateway import KannelGateway, kannel_binaries

CARRIER = "kannel_sim"
TOKEN_ENV = "SMSRECON_TEST_KANNEL_TOKEN"
#: The dlr-url template of docs/kannel.md, with our id and the token filled in.
DLR_URL = (
    "http://127.0.0.1:{port}/v1/dlr/{carrier}?message_id={message_id}"
    "&type=%d&answer=%A&smsc=%i&smsc_id=%F&ts=%T&to=%p&from=%P&token={token}"
)
CALLBACK_TIMEOUT = 60.0
SENDER = "BeautySalon"
TEXT = "Hello Anna, your appointment is at 15:00"


@dataclass(frozen=True)
class Case:
    message_id: str
    phone: str
    outcome: Outcome
    #: Kannel's DLR types (the `type` of its callbacks), in any order, duplicates included.
    callbacks: tuple[int, ...]
    #: The Altegio statuses stored, once each.
    statuses: frozenset[int]


CASES = [
    # ENROUTE twice: Kannel calls twice with the same report, and it is stored once.
    Case("e2e-delivered", "+79160000001", Outcome("DELIVRD", ("ENROUTE", "ENROUTE")),
         (8, 4, 4, 1), frozenset({8, 4, 1})),
    Case("e2e-undelivered", "+79160000002", Outcome("UNDELIV", err="027"),
         (8, 2), frozenset({8, 2})),
    # The SMSC refuses the submit_sm: Kannel reports type 16, "NACK/0x0000000b/...".
    Case("e2e-refused", "+79160000003", Outcome(submit_status=Status.RINVDSTADR),
         (16,), frozenset({16})),
    # ACCEPTD is Kannel type 4; a REJECTD receipt is Kannel type 2 but Altegio's 16.
    Case("e2e-rejected", "+79160000004", Outcome("REJECTD", ("ACCEPTD",)),
         (8, 4, 2), frozenset({8, 4, 16})),
]  # fmt: skip
#: Sent with a wrong token: every callback is refused and nothing is stored.
FORGED = Case("e2e-forged", "+79160000005", Outcome("DELIVRD"), (8, 1), frozenset())


@dataclass(frozen=True)
class Callback:
    """One request Kannel made to smsrecon, and smsrecon's answer."""

    query: dict[str, str]
    status: int


def require_kannel() -> None:
    if kannel_binaries() is not None:
        return
    reason = "Kannel (bearerbox, smsbox) is not installed: apt-get install kannel kannel-extras"
    if os.environ.get("CI"):
        pytest.fail(f"{reason}; the real-gateway test must run under CI (.ci/run installs it)")
    pytest.skip(f"REAL KANNEL NOT TESTED: {reason}")


def recorder(calls: list[Callback]) -> Callable[..., Awaitable[web.StreamResponse]]:
    """A middleware keeping every DLR callback and the status smsrecon answered it with."""

    @web.middleware
    async def record(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        status = 500
        try:
            response = await handler(request)
        except web.HTTPException as exc:
            status = exc.status
            raise
        else:
            status = response.status
            return response
        finally:
            if request.path.startswith("/v1/dlr/"):
                query = {k: v[0] for k, v in parse_qs(request.query_string).items()}
                query.update({"token": "***"} if "token" in query else {})
                calls.append(Callback(query, status))

    return record


async def start_ingest(settings: Settings, db: Database, calls: list[Callback]) -> web.AppRunner:
    app = build_ingest_app(settings, db)
    app.middlewares.append(recorder(calls))
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    server = runner.addresses[0]
    return int(server[1])


def sendsms_url(gateway: KannelGateway, case: Case, dlr_url: str) -> URL:
    """smsbox's sendsms request; the dlr-url is one percent-encoded parameter value."""
    query = urlencode(
        {
            "username": gateway.sendsms_user,
            "password": gateway.sendsms_password,
            "from": SENDER,
            "to": case.phone,
            "text": TEXT,
            "dlr-mask": "31",
            "dlr-url": dlr_url,
        },
        quote_via=quote,
    )
    return URL(f"{gateway.sendsms_url}?{query}", encoded=True)


async def wait_for(condition: Callable[[], bool], what: str, timeout: float) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(0.02)


@pytest.fixture
async def gateway_and_ingest(
    db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[KannelGateway, SmscSimulator, list[Callback], int, str]]:
    require_kannel()
    token = secrets.token_urlsafe(16)
    monkeypatch.setenv(TOKEN_ENV, token)
    settings = Settings.model_validate(
        {
            "carriers": {
                CARRIER: {
                    "format": "kannel",
                    "auth": {"type": "token", "secret_env": TOKEN_ENV},
                    "timezone": "UTC",
                }
            }
        }
    )
    calls: list[Callback] = []
    runner = await start_ingest(settings, db, calls)
    outcomes = {case.phone.lstrip("+"): case.outcome for case in [*CASES, FORGED]}
    try:
        async with (
            SmscSimulator(outcomes) as smsc,
            KannelGateway(tmp_path, smsc.port, mask=[token]) as gateway,
        ):
            yield gateway, smsc, calls, bound_port(runner), token
    finally:
        await runner.cleanup()


def status_events(db: Database) -> list[StoredEvent]:
    return [e for e in read(db, limit=10_000).events if e.type == "carrier.status"]


async def test_kannel_callbacks_become_carrier_status_events(
    db: Database, gateway_and_ingest: tuple[KannelGateway, SmscSimulator, list[Callback], int, str]
) -> None:
    gateway, smsc, calls, port, token = gateway_and_ingest
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        for case in [*CASES, FORGED]:
            secret = token if case is not FORGED else "not-the-token"
            dlr_url = DLR_URL.format(
                port=port, carrier=CARRIER, message_id=case.message_id, token=secret
            )
            async with session.get(sendsms_url(gateway, case, dlr_url)) as response:
                body = await response.text()
            assert response.status == 202, f"sendsms answered {response.status}: {body}"

    expected_calls = sum(len(case.callbacks) for case in [*CASES, FORGED])
    try:
        # smsrecon answers a callback only after its events are committed, so once every
        # callback has its answer, the events table holds everything there is to check.
        await wait_for(lambda: len(calls) >= expected_calls, "callbacks", CALLBACK_TIMEOUT)
    except AssertionError as exc:
        raise AssertionError(f"{exc}; got {calls}\n{gateway.log_tail()}") from None

    by_message: dict[str, list[Callback]] = {}
    for call in calls:
        by_message.setdefault(call.query.get("message_id", "?"), []).append(call)
    events = status_events(db)
    submitted = {s.destination: s.message_id for s in smsc.record.submissions}

    for case in CASES:
        got = by_message.get(case.message_id, [])
        assert sorted(int(c.query["type"]) for c in got) == sorted(case.callbacks), got
        assert all(c.status == 200 for c in got), f"{case.message_id}: answers {got}"
        mine = [e for e in events if e.message_id == case.message_id]
        statuses = Counter(e.payload["status"] for e in mine)
        # Each status once: the repeated ENROUTE callback is a duplicate, not a new event.
        assert statuses == Counter(case.statuses), f"{case.message_id}: {mine}"
        smsc_id = submitted[case.phone.lstrip("+")]
        for event in mine:
            assert event.carrier == CARRIER
            assert event.payload["format"] == "kannel"
            assert event.carrier_message_id == smsc_id, event
            assert token not in repr(event.payload), "the token must not be stored"
            # A receipt's done date is the event's time; Kannel's own reports have none.
            from_receipt = not event.payload["raw_status"].startswith("kannel:")
            assert (event.payload["done_at"] is not None) == from_receipt, event

    errors = {
        (e.message_id, e.payload["status"]): e.payload["error_code"]
        for e in events
        if e.payload["status"] in (2, 16)
    }
    assert errors[("e2e-undelivered", 2)] == "027"  # the receipt's err:
    assert errors[("e2e-refused", 16)] == "0x0000000b"  # the submit_sm_resp command_status

    forged = by_message.get(FORGED.message_id, [])
    assert sorted(int(c.query["type"]) for c in forged) == sorted(FORGED.callbacks)
    assert all(c.status == 401 for c in forged), forged
    assert not [e for e in events if e.message_id == FORGED.message_id]
    assert len(events) == sum(len(case.statuses) for case in CASES)
