"""Numbers are bounded before any arithmetic.

A 731-byte Infobip report with ``"smsCount": 1E+300000`` once held the event loop for
seconds (``1E+99999999`` for minutes), and a 77-byte ``"cost": "1E+5000000"`` became a 5 MB
row. Such numbers are now refused from their text, without being expanded: each request
below is answered 400 and quarantined, and the server answers the next request normally.
That the refusal is bounded in time is shown by its completing at all: expanding
``1E+99999999`` would take minutes and the test would hit its timeout.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from pipeline.db.engine import Database
from tests.hostile.ingest_hostile import (
    CARRIERS,
    GENERIC,
    MESSAGE,
    SUBMISSION,
    assert_quarantined,
    infobip,
    raw_json,
)
from tests.ingest.server_fixtures import event_count, live_server, make_settings, stored_events

HUGE = [
    "1E+300000", "1E+1000000", "1E+99999999", "9" * 5000, "1" + "0" * 4301, "-1E+99999999",
    "1E+" + "9" * 37,
]  # fmt: skip


def _infobip_with(path: str, literal: str) -> str:
    if path == "smsCount":
        return raw_json(infobip(smsCount="@n@"), n=literal)
    if path == "status.groupId":
        return raw_json(infobip(status={"groupId": "@n@"}), n=literal)
    if path == "error.id":
        return raw_json(infobip(error={"id": "@n@"}), n=literal)
    assert path == "price.pricePerMessage"
    return raw_json(infobip(price={"pricePerMessage": "@n@", "currency": "EUR"}), n=literal)


@pytest.mark.parametrize("literal", HUGE, ids=lambda v: v[:14])
@pytest.mark.parametrize(
    "field", ["smsCount", "status.groupId", "error.id", "price.pricePerMessage"]
)
async def test_a_huge_infobip_number_is_refused_and_the_server_stays_responsive(
    db: Database, field: str, literal: str
) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        body = _infobip_with(field, literal)
        response = await client.post(
            "/v1/dlr/infobip", data=body, headers={"Content-Type": "application/json"}
        )
        await assert_quarantined(response, db)
        health = await client.get("/healthz")
        assert health.status == 200
    assert event_count(db) == 0


@pytest.mark.parametrize("literal", HUGE, ids=lambda v: v[:14])
@pytest.mark.parametrize("field", ["parts", "part", "cost"])
async def test_a_huge_generic_number_is_refused(db: Database, field: str, literal: str) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        for quoted in (literal, f'"{literal}"'):
            body = raw_json({**GENERIC, field: "@n@"}, n=quoted)
            await assert_quarantined(await client.post("/v1/dlr/generic", data=body), db)
    assert event_count(db) == 0


@pytest.mark.parametrize("literal", HUGE, ids=lambda v: v[:14])
async def test_a_huge_number_on_the_send_path_is_refused(db: Database, literal: str) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        for path, document, field in (
            ("/v1/messages", MESSAGE, "parts"),
            ("/v1/submissions", SUBMISSION, "parts"),
            ("/v1/submissions", SUBMISSION, "part"),
        ):
            for quoted in (literal, f'"{literal}"'):
                body = raw_json({**document, field: "@n@"}, n=quoted)
                await assert_quarantined(await client.post(path, data=body), db)
        # An id may be any string ("1E+300000" is one), but not a number literal like it.
        body = raw_json({**MESSAGE, "id": "@n@"}, n=literal)
        await assert_quarantined(await client.post("/v1/messages", data=body), db)
    assert event_count(db) == 0


async def test_cost_1e5000000_is_refused_not_stored_as_a_huge_row(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        body = raw_json({**GENERIC, "cost": "1E+5000000"})
        assert len(body) < 200
        response = await client.post("/v1/dlr/generic", data=body)
        answer = await assert_quarantined(response, db)
        tiny = raw_json({**GENERIC, "cost": "1E-5000000"})
        await assert_quarantined(await client.post("/v1/dlr/generic", data=tiny), db)
    assert answer["detail"][0]["field"] == "cost"
    assert event_count(db) == 0


async def test_a_cost_is_stored_normalised_in_fixed_point(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post("/v1/dlr/generic", json={**GENERIC, "cost": "1.5E+2"})
        assert response.status == 200, await response.text()
    [row] = stored_events(db)
    assert row.payload["cost"] == "150"


@pytest.mark.parametrize(
    ("path", "document"),
    [
        ("/v1/dlr/generic", {**GENERIC, "cost": "100000.01"}),
        ("/v1/dlr/infobip", infobip(price={"pricePerMessage": "100001", "currency": "EUR"})),
        (
            "/v1/dlr/infobip",
            infobip(smsCount=3, price={"pricePerMessage": "40000", "currency": "EUR"}),
        ),
        ("/v1/dlr/vonage", {"messageId": "v-1", "status": "delivered", "price": "250000"}),
    ],
    ids=["generic", "infobip-part", "infobip-message", "vonage"],
)
async def test_a_cost_over_the_sanity_bound_is_refused(
    db: Database, path: str, document: dict[str, Any]
) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        await assert_quarantined(await client.post(path, json=document), db)
    assert event_count(db) == 0


async def test_the_sanity_bound_is_configurable(db: Database) -> None:
    settings = make_settings(CARRIERS, max_amount="10")
    async with live_server(settings, db) as client:
        over = await client.post("/v1/dlr/generic", json={**GENERIC, "cost": "10.01"})
        await assert_quarantined(over, db)
        at = await client.post("/v1/dlr/generic", json={**GENERIC, "cost": "10"})
        assert at.status == 200
    [row] = stored_events(db)
    assert Decimal(row.payload["cost"]) == Decimal("10")


UNICODE_DIGITS = ["\u0661", "\u00b2", "\uff11", "\u0967", "\U0001d7ce"]


@pytest.mark.parametrize("digit", UNICODE_DIGITS, ids=lambda d: f"U+{ord(d):04X}")
async def test_unicode_digits_are_refused_where_a_number_is_expected(
    db: Database, digit: str
) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        for path, document in (
            ("/v1/messages", {**MESSAGE, "parts": digit}),
            ("/v1/submissions", {**SUBMISSION, "parts": digit}),
            ("/v1/dlr/generic", {**GENERIC, "parts": digit}),
            ("/v1/dlr/generic", {**GENERIC, "status": digit}),
            ("/v1/dlr/generic", {**GENERIC, "cost": digit}),
            ("/v1/dlr/infobip", infobip(smsCount=digit)),
            ("/v1/dlr/vonage", {"messageId": "v-1", "status": "delivered", "price": digit}),
            ("/v1/dlr/vonage", {"messageId": "v-1", "status": "delivered", "scts": digit * 10}),
        ):
            await assert_quarantined(await client.post(path, json=document), db)
        kannel = await client.get("/v1/dlr/kannel", params={"message_id": "42", "type": digit})
        await assert_quarantined(kannel, db)
        jasmin = await client.post(
            "/v1/dlr/jasmin", data={"id": "j-1", "level": digit, "message_status": "DELIVRD"}
        )
        await assert_quarantined(jasmin, db)
        twilio = await client.post(
            "/v1/dlr/twilio",
            data={"MessageSid": "SM1", "MessageStatus": "delivered", "NumSegments": digit},
        )
        await assert_quarantined(twilio, db)
    assert event_count(db) == 0
