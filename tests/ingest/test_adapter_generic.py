"""smsrecon's generic JSON report: one or many, SMPP stats or Altegio codes, strict keys."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pipeline.ingest.adapters import ParseError, parse_report
from tests.ingest import RECEIVED_AT, carrier_context, get_request, json_request


def generic(document, zone: str = "UTC"):
    body = document if isinstance(document, str) else json.dumps(document)
    return parse_report("generic", json_request("/v1/dlr/gen", body), carrier_context("gen", zone))


def test_one_object_with_every_field():
    report = {
        "message_id": "232674",
        "carrier_message_id": "ABC-1",
        "status": "DELIVRD",
        "occurred_at": "2024-01-15T10:31:00Z",
        "parts": 2,
        "part": 1,
        "cost": "0.0666",
        "currency": "eur",
        "error_code": "000",
    }
    (event,) = generic(report).events
    assert (event.message_id, event.carrier_message_id) == ("232674", "abc-1")
    payload = event.payload
    assert (payload["status"], payload["raw_status"]) == (1, "DELIVRD")
    assert (payload["cost"], payload["cost_scope"], payload["currency"]) == (
        "0.0666",
        "message",
        "EUR",
    )
    assert (payload["parts"], payload["part"], payload["error_code"]) == (2, 1, "000")
    assert event.occurred_at == datetime(2024, 1, 15, 10, 31, tzinfo=UTC)
    assert event.dedup_key == "dlr:gen:abc-1:1:DELIVRD:2024-01-15T10:31:00Z"


def test_an_array_is_one_event_per_report_and_altegio_codes_are_accepted():
    events = generic(
        [{"message_id": "1", "status": 52}, {"message_id": "2", "status": "16"}]
    ).events
    assert [e.payload["status"] for e in events] == [52, 16]
    assert events[0].occurred_at == RECEIVED_AT


def test_occurred_at_without_zone_is_read_in_the_carrier_zone():
    (event,) = generic(
        {"message_id": "1", "status": "DELIVRD", "occurred_at": "2024-07-01T12:00:00"},
        zone="Europe/Moscow",
    ).events
    assert event.occurred_at == datetime(2024, 7, 1, 9, 0, tzinfo=UTC)


def test_json_numbers_for_cost_keep_every_digit():
    (event,) = generic(
        '{"message_id": "1", "status": 1, "cost": 0.1000000000000000055511, "currency": "EUR"}'
    ).events
    assert event.payload["cost"] == "0.1000000000000000055511"


def test_query_string_report_for_gateways_that_only_call_urls():
    request = get_request("/v1/dlr/gen", message_id="9", status="UNDELIV", error_code="27")
    (event,) = parse_report("generic", request, carrier_context("gen")).events
    assert (event.payload["status"], event.payload["error_code"]) == (2, "27")


def test_resent_report_has_the_same_key_and_a_different_status_another():
    base = {"carrier_message_id": "x1", "status": "ENROUTE"}
    assert generic(base).events[0].dedup_key == generic(dict(base)).events[0].dedup_key
    assert (
        generic(base).events[0].dedup_key
        != generic(dict(base, status="DELIVRD")).events[0].dedup_key
    )


@pytest.mark.parametrize(
    ("document", "field"),
    [
        ({"status": "DELIVRD"}, "message_id"),
        ({"message_id": "1"}, "status"),
        ({"message_id": "1", "status": 3}, "status"),
        ({"message_id": "1", "status": "TELEPORTED"}, "status"),
        ({"message_id": "1", "status": 1, "carrier": "x"}, "carrier"),
        ({"message_id": "1", "status": 1, "cost": "0.10"}, "currency"),
        ({"message_id": "1", "status": 1, "cost": "ten", "currency": "EUR"}, "cost"),
        ({"message_id": "1", "status": 1, "currency": "euro"}, "currency"),
        ({"message_id": "1", "status": 1, "parts": 0}, "parts"),
        ({"message_id": "1", "status": 1, "parts": 2, "part": 3}, "part"),
        ({"message_id": "1", "status": 1, "occurred_at": "soon"}, "occurred_at"),
        ({"message_id": ["1"], "status": 1}, "message_id"),
        ({"message_id": "1" * 200, "status": 1}, "message_id"),
        ([{"message_id": "1", "status": 1}, {"status": 1}], "[1].message_id"),
        ([], "body"),
        ("[1", "body"),
        ("", "body"),
        ([1], "[0].report"),
    ],
)
def test_bad_reports_name_the_field(document, field):
    with pytest.raises(ParseError) as caught:
        generic(document)
    assert caught.value.field == field
