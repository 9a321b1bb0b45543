"""Vonage SMS receipts: GET, form and JSON; per-part price; client-ref; scts zone; errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from pipeline.ingest.adapters import ParseError, parse_report
from tests.ingest import carrier_context, form_request, get_request, json_request, sample_text

FIELDS = {
    "msisdn": "447700900000",
    "to": "AcmeInc",
    "messageId": "0A0000001234567B",
    "price": "0.03330000",
    "status": "delivered",
    "scts": "2001011400",
    "err-code": "0",
    "api-key": "abcd1234",
    "message-timestamp": "2020-01-01 12:00:00",
}


def vonage(request, zone: str = "UTC"):
    return parse_report("vonage", request, carrier_context("vg", zone))


def test_sample_json_receipt_parses_with_a_part_price():
    (event,) = vonage(json_request("/v1/dlr/vg", sample_text("vonage_sms_dlr.json"))).events
    assert event.carrier_message_id == "0a0000001234567b"
    assert event.payload["status"] == 1
    assert (event.payload["cost"], event.payload["cost_scope"]) == ("0.03330000", "part")
    assert event.payload["currency"] == "EUR"
    assert event.payload["parts"] is None and event.payload["part"] is None
    assert event.payload["error_code"] is None
    assert event.occurred_at == datetime(2020, 1, 1, 14, 0, tzinfo=UTC)
    assert "api-key" not in event.payload["raw"]


def test_get_form_and_json_deliveries_are_the_same_event():
    by_get = vonage(get_request("/v1/dlr/vg", **FIELDS)).events[0]
    by_form = vonage(form_request("/v1/dlr/vg", FIELDS)).events[0]
    by_json = vonage(json_request("/v1/dlr/vg", json.dumps(FIELDS))).events[0]
    assert by_get == by_form == by_json


def test_client_ref_carries_our_message_id():
    (event,) = vonage(get_request("/v1/dlr/vg", **FIELDS, **{"client-ref": "232674"})).events
    assert event.message_id == "232674"


def test_scts_is_read_in_the_carrier_zone():
    (event,) = vonage(get_request("/v1/dlr/vg", **FIELDS), zone="Europe/Berlin").events
    assert event.occurred_at == datetime(2020, 1, 1, 13, 0, tzinfo=UTC)


def test_receipts_for_the_parts_of_a_long_message_stay_parts():
    part1 = dict(FIELDS, messageId="0A00000000000001", **{"client-ref": "77"})
    part2 = dict(FIELDS, messageId="0A00000000000002", **{"client-ref": "77"})
    one = vonage(get_request("/v1/dlr/vg", **part1)).events[0]
    two = vonage(get_request("/v1/dlr/vg", **part2)).events[0]
    assert one.message_id == two.message_id == "77"
    assert one.dedup_key != two.dedup_key
    for event in (one, two):
        assert event.payload["cost_scope"] == "part"
        assert event.payload["parts"] is None


def test_resent_receipt_has_the_same_key():
    assert (
        vonage(get_request("/v1/dlr/vg", **FIELDS)).events[0].dedup_key
        == vonage(json_request("/v1/dlr/vg", json.dumps(FIELDS))).events[0].dedup_key
        == "dlr:vg:0a0000001234567b:-:delivered:2001011400"
    )


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("accepted", 4),
        ("buffered", 4),
        ("expired", 2),
        ("failed", 2),
        ("rejected", 16),
        ("unknown", 2),
    ],
)
def test_statuses_map_to_altegio_codes(status, code):
    fields = dict(FIELDS, status=status, **{"err-code": "5"})
    (event,) = vonage(get_request("/v1/dlr/vg", **fields)).events
    assert event.payload["status"] == code
    assert event.payload["error_code"] == "5"


def test_currency_query_parameter_overrides_the_account_default():
    request = get_request("/v1/dlr/vg", **FIELDS, currency="usd")
    assert vonage(request).events[0].payload["currency"] == "USD"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({k: v for k, v in FIELDS.items() if k != "messageId"}, "messageId"),
        ({k: v for k, v in FIELDS.items() if k != "status"}, "status"),
        (dict(FIELDS, status="teleported"), "status"),
        (dict(FIELDS, price="free"), "price"),
        (dict(FIELDS, price="-1"), "price"),
        (dict(FIELDS, scts="20010114"), "scts"),
    ],
)
def test_bad_receipts_name_the_field(fields, field):
    with pytest.raises(ParseError) as caught:
        vonage(get_request("/v1/dlr/vg", **fields))
    assert caught.value.field == field


def test_json_array_is_refused():
    with pytest.raises(ParseError) as caught:
        vonage(json_request("/v1/dlr/vg", "[]"))
    assert caught.value.field == "body"
