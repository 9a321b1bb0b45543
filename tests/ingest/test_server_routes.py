"""The ingest app's own routes, DLR routing, limits, health and metrics, on both backends."""

from __future__ import annotations

import json

from pipeline.db.engine import Database
from tests.ingest.server_fixtures import (
    event_count,
    live_server,
    make_settings,
    quarantine_rows,
    stored_events,
)

CARRIERS = {"acme": {"format": "generic", "timezone": "Europe/Moscow"}}

MESSAGE = {
    "id": "232674",
    "phone": "79161234567",
    "text": "Hello Anna, your appointment is at 15:00",
    "sender": "BeautySalon",
    "dispatch_type": "service",
    "accepted_at": "2026-01-15T13:30:00+03:00",
}


async def test_accepted_message_is_stored_with_e164_phone_and_defaults(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post("/v1/messages", json=MESSAGE)
        assert response.status == 200
        assert await response.json() == {"appended": 1, "duplicates": 0}
    [row] = stored_events(db, "message.accepted")
    assert row.message_id == "232674"
    assert row.dedup_key == "accepted:232674"
    assert row.source == "http:/v1/messages"
    assert row.occurred_at.isoformat() == "2026-01-15T10:30:00+00:00"
    assert row.payload == {
        "partner": "default",
        "phone": "+79161234567",
        "text": MESSAGE["text"],
        "sender": "BeautySalon",
        "channel": "sms",
        "dispatch_type": "service",
        "free": False,
    }


async def test_the_same_message_twice_is_one_event_and_reported_duplicate(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        first = await client.post("/v1/messages", json=MESSAGE)
        again = await client.post("/v1/messages", json=[MESSAGE, {**MESSAGE, "id": "232675"}])
        assert await first.json() == {"appended": 1, "duplicates": 0}
        assert await again.json() == {"appended": 1, "duplicates": 1}
    assert [row.message_id for row in stored_events(db)] == ["232674", "232675"]


async def test_bad_item_refuses_the_whole_array_and_is_quarantined(db: Database) -> None:
    bad = [MESSAGE, {**MESSAGE, "id": "2", "phone": "+7916"}, {"id": "3", "phone": "+79161234567"}]
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post("/v1/messages", json=bad)
        assert response.status == 400
        answer = await response.json()
    assert answer["error"] == "invalid message"
    assert answer["detail"] == [
        {"index": 1, "field": "phone", "reason": "not a possible phone number: '+7916'"},
        {"index": 2, "field": "text", "reason": "required (or parts, when the text is not given)"},
    ]
    assert event_count(db) == 0
    [row] = quarantine_rows(db)
    assert row.id == answer["quarantine_id"]
    assert (row.method, row.path, row.format, row.status) == (
        "POST",
        "/v1/messages",
        "messages",
        "open",
    )
    assert json.loads(row.body) == bad
    assert row.body_encoding == "utf-8"
    assert row.detail == answer["detail"]


async def test_body_that_is_not_json_is_400_and_quarantined(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post("/v1/refusals", data=b"\xff\xfe not json")
        assert response.status == 400
        assert (await response.json())["error"] == "invalid JSON"
    [row] = quarantine_rows(db)
    assert row.body_encoding == "base64"


async def test_submission_is_normalised_and_needs_a_configured_carrier(db: Database) -> None:
    submission = {"message_id": "232674", "carrier": "acme", "carrier_message_id": "3E8F2B1C"}
    async with live_server(make_settings(CARRIERS), db) as client:
        ok = await client.post("/v1/submissions", json={**submission, "parts": 2})
        unknown = await client.post("/v1/submissions", json={**submission, "carrier": "other"})
        assert ok.status == 200
        assert unknown.status == 400
        assert (await unknown.json())["detail"][0]["field"] == "carrier"
    [row] = stored_events(db)
    assert (row.type, row.carrier, row.carrier_message_id) == (
        "carrier.submitted",
        "acme",
        "3e8f2b1c",
    )
    assert row.dedup_key == "submitted:acme:3e8f2b1c"
    assert row.payload == {"parts": 2}


async def test_refusal_becomes_message_refused(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post(
            "/v1/refusals", json={"message_id": "9", "reason": "insufficient_funds"}
        )
        assert response.status == 200
    [row] = stored_events(db)
    assert (row.type, row.message_id, row.dedup_key) == ("message.refused", "9", "refused:9")
    assert row.payload == {"reason": "insufficient_funds"}


async def test_dlr_post_and_get_reach_the_carriers_adapter(db: Database) -> None:
    report = {
        "carrier_message_id": "ABC1",
        "status": "DELIVRD",
        "occurred_at": "2026-01-15T10:31:00Z",
    }
    async with live_server(make_settings(CARRIERS), db) as client:
        posted = await client.post("/v1/dlr/acme", json=report)
        assert posted.status == 200
        assert await posted.text() == "OK"
        got = await client.get("/v1/dlr/acme", params={"message_id": "7", "status": "ENROUTE"})
        assert got.status == 200
        resent = await client.post("/v1/dlr/acme", json=report)
        assert resent.status == 200
    rows = stored_events(db, "carrier.status")
    assert [(r.carrier_message_id, r.message_id, r.payload["status"]) for r in rows] == [
        ("abc1", None, 1),
        (None, "7", 4),
    ]
    assert {r.source for r in rows} == {"http:/v1/dlr/acme"}


async def test_unknown_carrier_is_404_and_not_quarantined(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.post("/v1/dlr/nobody", json={"status": "DELIVRD"})
        assert response.status == 404
        assert await response.json() == {
            "error": "unknown carrier",
            "detail": {"carrier": "nobody"},
        }
    assert quarantine_rows(db) == []


async def test_body_over_the_limit_is_413_and_not_stored(db: Database) -> None:
    big = json.dumps({**MESSAGE, "text": "x" * 3000}).encode()
    async with live_server(make_settings(CARRIERS, max_body_bytes=2048), db) as client:
        response = await client.post("/v1/messages", data=big)
        assert response.status == 413
        assert (await response.json())["error"] == "body too large"
        chunked = await client.post("/v1/dlr/acme", data=_chunks(big))
        assert chunked.status == 413
        small = await client.post("/v1/messages", json=MESSAGE)
        assert small.status == 200
    assert event_count(db) == 1
    assert quarantine_rows(db) == []


async def _chunks(data: bytes):  # type: ignore[no-untyped-def]
    for start in range(0, len(data), 512):
        yield data[start : start + 512]


async def test_healthz_checks_the_database(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        response = await client.get("/healthz")
        assert response.status == 200
        body = await response.json()
        assert (body["status"], body["reasons"]) == ("ok", [])


async def test_metrics_count_requests_events_and_quarantine(db: Database) -> None:
    async with live_server(make_settings(CARRIERS), db) as client:
        await client.post("/v1/messages", json=MESSAGE)
        await client.post("/v1/messages", json=MESSAGE)
        await client.post("/v1/messages", json={"id": "x"})
        text = await (await client.get("/metrics")).text()
    assert 'smsrecon_ingest_requests_total{route="/v1/messages",status="200"} 2.0' in text
    assert 'smsrecon_ingest_requests_total{route="/v1/messages",status="400"} 1.0' in text
    assert "smsrecon_ingest_events_appended_total 1.0" in text
    assert "smsrecon_ingest_events_duplicate_total 1.0" in text
    assert 'smsrecon_ingest_quarantined_total{route="/v1/messages"} 1.0' in text
    assert "smsrecon_ingest_commit_batch_events_count 2.0" in text
