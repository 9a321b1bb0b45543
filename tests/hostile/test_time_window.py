"""Times outside the configured window (default years 2000-2100) are refused at ingest.

A year-999 time once went into the log and stopped every later projection; such a time is
now answered 400 and kept in quarantine, for every time field of every dialect and of the
send path, and nothing of the request reaches the log.
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from pipeline.db.engine import Database
from tests.hostile.ingest_hostile import (
    CARRIERS,
    GENERIC,
    MESSAGE,
    REFUSAL,
    SUBMISSION,
    assert_quarantined,
    infobip,
)
from tests.ingest.server_fixtures import event_count, live_server, make_settings


async def test_year_999_is_refused_with_400_and_quarantined(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post(
            "/v1/messages", json={**MESSAGE, "accepted_at": "0999-06-01T00:00:00Z"}
        )
        answer = await assert_quarantined(response, db)
        good = await client.post("/v1/messages", json=MESSAGE)
        assert good.status == 200
    assert answer["detail"][0]["field"] == "accepted_at"
    assert event_count(db) == 1


BAD_TIMES = [
    ("/v1/messages", {**MESSAGE, "accepted_at": "0999-06-01T00:00:00Z"}),
    ("/v1/messages", {**MESSAGE, "accepted_at": "2101-01-01T00:00:00Z"}),
    ("/v1/messages", {**MESSAGE, "accepted_at": "0001-01-01T00:00:00+05:00"}),
    ("/v1/messages", {**MESSAGE, "accepted_at": "9999-12-31T23:59:59-05:00"}),
    ("/v1/submissions", {**SUBMISSION, "submitted_at": "1999-12-31T23:59:59Z"}),
    ("/v1/refusals", {**REFUSAL, "refused_at": "0999-06-01T00:00:00Z"}),
    ("/v1/dlr/generic", {**GENERIC, "occurred_at": "0999-06-01T00:00:00Z"}),
    ("/v1/dlr/generic", {**GENERIC, "occurred_at": "0001-01-01T00:00:00"}),
    ("/v1/dlr/infobip", infobip(doneAt="0999-06-01T00:00:00.000+0000")),
    ("/v1/dlr/infobip", infobip(doneAt="9999-12-31T23:59:59.000-1200")),
    ("/v1/dlr/vonage", {"messageId": "v-1", "status": "delivered", "scts": "9901011400"}),
]


@pytest.mark.parametrize(("path", "document"), BAD_TIMES, ids=lambda v: str(v)[:40])
async def test_a_time_outside_the_window_is_refused_on_every_json_route(
    db: Database, path: str, document: dict[str, object]
) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        await assert_quarantined(await client.post(path, data=json.dumps(document)), db)
    assert event_count(db) == 0


def _receipt(done: str) -> str:
    return (
        "id:3e8f2b1c sub:001 dlvrd:001 submit date:2401151030 "
        f"done date:{done} stat:DELIVRD err:000 text:"
    )


@pytest.mark.parametrize("done", ["9901151031", "990115103100", "6801151031"])
async def test_a_receipt_date_outside_the_window_is_refused_on_the_form_routes(
    db: Database, done: str
) -> None:
    year_1999_or_2068 = _receipt(done)
    async with live_server(make_settings(CARRIERS, max_year=2067), db) as client:
        kannel = await client.get(
            f"/v1/dlr/kannel?message_id=42&type=1&smsc_id=3e8f2b1c&answer={quote(year_1999_or_2068)}"
        )
        await assert_quarantined(kannel, db)
        smpp = await client.post(
            "/v1/dlr/smpp", data=year_1999_or_2068, headers={"Content-Type": "text/plain"}
        )
        await assert_quarantined(smpp, db)
        jasmin = await client.post(
            "/v1/dlr/jasmin",
            data={"id": "j-1", "level": "2", "message_status": "DELIVRD", "donedate": done},
        )
        await assert_quarantined(jasmin, db)
        twilio = await client.post(
            "/v1/dlr/twilio",
            data={"MessageSid": "SM1", "MessageStatus": "delivered", "RawDlrDoneDate": done},
        )
        await assert_quarantined(twilio, db)
    assert event_count(db) == 0


async def test_the_window_is_configurable(db: Database) -> None:
    settings = make_settings(CARRIERS, min_year=2020, max_year=2030)
    async with live_server(settings, db) as client:
        early = await client.post(
            "/v1/messages", json={**MESSAGE, "accepted_at": "2019-12-31T23:59:59Z"}
        )
        await assert_quarantined(early, db)
        inside = await client.post(
            "/v1/messages", json={**MESSAGE, "accepted_at": "2030-12-31T23:59:59Z"}
        )
        assert inside.status == 200
        late = await client.post(
            "/v1/messages", json={**MESSAGE, "id": "m-9", "accepted_at": "2031-01-01T00:00:00Z"}
        )
        await assert_quarantined(late, db)
    assert event_count(db) == 1


@pytest.mark.parametrize("ts", ["99999999999", "946684799"])  # year 5138; 1999-12-31
async def test_a_kannel_ts_outside_the_window_is_refused(db: Database, ts: str) -> None:
    """A type-8 report has no receipt, so its time is Kannel's %T: checked like any other."""
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.get(f"/v1/dlr/kannel?message_id=42&type=8&ts={ts}&answer=ACK%2F")
        await assert_quarantined(response, db)
        inside = await client.get("/v1/dlr/kannel?message_id=42&type=8&ts=1768473062&answer=ACK%2F")
        assert inside.status == 200
    assert event_count(db) == 1
