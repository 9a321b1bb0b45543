"""Infobip delivery reports: results[], per-part price times parts, status groups, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipeline.ingest.adapters import ParseError, parse_report
from tests.ingest import RECEIVED_AT, carrier_context, json_request, sample_text


def result(**overrides):
    item = {
        "messageId": "MSG-1",
        "doneAt": "2024-01-15T10:31:00.000+0000",
        "smsCount": 1,
        "price": {"pricePerMessage": 0.01, "currency": "EUR"},
        "status": {"groupId": 3, "groupName": "DELIVERED", "id": 5, "name": "DELIVERED_TO_HANDSET"},
        "error": {"groupId": 0, "groupName": "OK", "id": 0, "name": "NO_ERROR"},
    }
    item.update(overrides)
    return item


def infobip(*results, raw: str | None = None):
    body = raw if raw is not None else json.dumps({"results": list(results)})
    return parse_report("infobip", json_request("/v1/dlr/ib", body), carrier_context("ib"))


def test_sample_report_parses():
    parsed = parse_report(
        "infobip",
        json_request("/v1/dlr/ib", sample_text("infobip_sms_dlr.json")),
        carrier_context("ib"),
    )
    (event,) = parsed.events
    assert event.carrier_message_id == "message-id-123-xyz"
    assert event.message_id is None  # callbackData is not our id
    assert event.payload["raw"]["callbackData"] == "callbackData"
    assert event.payload["status"] == 1
    assert event.payload["raw_status"] == "DELIVERED_TO_HANDSET"
    assert (event.payload["cost"], event.payload["cost_scope"], event.payload["currency"]) == (
        "0.01",
        "message",
        "EUR",
    )
    assert event.payload["parts"] == 1
    assert event.occurred_at == datetime(2019, 11, 9, 16, 0, tzinfo=UTC)
    assert event.payload["raw"]["price"]["pricePerMessage"] == "0.01"


def test_message_cost_is_price_per_part_times_sms_count_exactly():
    (event,) = infobip(result(smsCount=3, price={"pricePerMessage": 0.1, "currency": "EUR"})).events
    assert Decimal(event.payload["cost"]) == Decimal("0.3")
    assert event.payload["cost_scope"] == "message"
    assert event.payload["parts"] == 3


def test_without_sms_count_the_price_is_kept_as_a_part_price():
    item = result()
    del item["smsCount"]
    (event,) = infobip(item).events
    assert (event.payload["cost"], event.payload["cost_scope"]) == ("0.01", "part")


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (
            {
                "groupId": 5,
                "groupName": "REJECTED",
                "id": 12,
                "name": "REJECTED_NOT_ENOUGH_CREDITS",
            },
            52,
        ),
        ({"groupId": 5, "groupName": "REJECTED", "id": 6, "name": "REJECTED_NETWORK"}, 16),
        (
            {
                "groupId": 2,
                "groupName": "UNDELIVERABLE",
                "id": 4,
                "name": "UNDELIVERABLE_REJECTED_OPERATOR",
            },
            16,
        ),
        (
            {
                "groupId": 2,
                "groupName": "UNDELIVERABLE",
                "id": 9,
                "name": "UNDELIVERABLE_NOT_DELIVERED",
            },
            2,
        ),
        ({"groupId": 4, "groupName": "EXPIRED", "id": 15, "name": "EXPIRED_EXPIRED"}, 2),
        ({"groupId": 1, "groupName": "PENDING", "id": 3, "name": "PENDING_WAITING_DELIVERY"}, 8),
        ({"groupId": 1, "groupName": "PENDING", "id": 7, "name": "PENDING_ENROUTE"}, 4),
        ({"groupId": 3, "groupName": "DELIVERED", "id": 2, "name": "DELIVERED_TO_OPERATOR"}, 8),
        ({"groupId": 3}, 1),
    ],
)
def test_status_names_and_groups_map_to_altegio_codes(status, code):
    assert infobip(result(status=status)).events[0].payload["status"] == code


def test_error_id_is_the_error_code_unless_no_error():
    error = {"groupId": 1, "groupName": "HANDSET_ERRORS", "id": 27, "name": "EC_ABSENT_SUBSCRIBER"}
    assert infobip(result(error=error)).events[0].payload["error_code"] == "27"
    assert infobip(result()).events[0].payload["error_code"] is None


def test_each_result_is_one_event_up_to_a_hundred():
    parsed = infobip(*[result(messageId=f"M{i}") for i in range(100)])
    assert len(parsed.events) == 100
    assert len({e.dedup_key for e in parsed.events}) == 100
    with pytest.raises(ParseError) as caught:
        infobip(*[result(messageId=f"M{i}") for i in range(101)])
    assert caught.value.field == "results"


def test_pending_report_without_done_date_uses_the_receive_time():
    item = result(status={"groupId": 1, "groupName": "PENDING", "name": "PENDING_ACCEPTED"})
    del item["doneAt"]
    (event,) = infobip(item).events
    assert event.occurred_at == RECEIVED_AT
    assert event.dedup_key == "dlr:ib:msg-1:-:PENDING_ACCEPTED:-"


def test_resent_report_has_the_same_key_and_a_later_status_another():
    first = infobip(result()).events[0]
    again = infobip(result()).events[0]
    pending = infobip(result(status={"groupId": 1, "name": "PENDING_WAITING_DELIVERY"})).events[0]
    assert first.dedup_key == again.dedup_key != pending.dedup_key


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("not json", "body"),
        ("[]", "body"),
        ('{"results": []}', "results"),
        (json.dumps({"results": [result(messageId=None)]}), "results[0].messageId"),
        (json.dumps({"results": [result(), result(status={"groupId": 9})]}), "results[1].status"),
        (json.dumps({"results": [result(smsCount=0)]}), "results[0].smsCount"),
        (
            json.dumps({"results": [result(price={"pricePerMessage": "x", "currency": "EUR"})]}),
            "results[0].price.pricePerMessage",
        ),
        (
            json.dumps({"results": [result(price={"pricePerMessage": 1})]}),
            "results[0].price.currency",
        ),
        (json.dumps({"results": [result(doneAt="yesterday")]}), "results[0].doneAt"),
        (json.dumps({"results": ["x"]}), "results[0].result"),
    ],
)
def test_bad_reports_name_the_field(body, field):
    with pytest.raises(ParseError) as caught:
        infobip(raw=body)
    assert caught.value.field == field
