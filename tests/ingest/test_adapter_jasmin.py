"""Jasmin HTTP DLRs: levels 1 and 2, ND fields, the exact ACK/Jasmin reply, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.ingest.adapters import ParseError, parse_report
from pipeline.ingest.captured import read_captured_requests
from tests.ingest import RECEIVED_AT, carrier_context, form_request, get_request, sample_text

JASMIN_ID = "16fd2706-8baf-433b-82eb-8c7fada847da"


def level2(**overrides: str) -> dict[str, str]:
    fields = {
        "id": JASMIN_ID,
        "level": "2",
        "message_status": "DELIVRD",
        "connector": "3e8f2b1c",
        "id_smsc": "3e8f2b1c",
        "sub": "001",
        "dlvrd": "001",
        "subdate": "2401151030",
        "donedate": "2401151031",
        "err": "000",
        "text": "Hello",
    }
    fields.update(overrides)
    return fields


def jasmin(fields: dict[str, str], zone: str = "UTC"):
    return parse_report("jasmin", form_request("/v1/dlr/jas", fields), carrier_context("jas", zone))


def test_sample_level2_receipt_parses_and_is_answered_ack_jasmin():
    (request,) = read_captured_requests(sample_text("jasmin_dlr_level2.form"))
    parsed = parse_report("jasmin", request, carrier_context("jas", "Europe/Moscow"))
    assert parsed.reply_body == "ACK/Jasmin"
    assert parsed.reply_status == 200
    (event,) = parsed.events
    assert event.carrier == "jas"
    assert event.carrier_message_id == JASMIN_ID
    assert event.payload["status"] == 1
    assert event.payload["raw_status"] == "DELIVRD"
    assert event.payload["error_code"] == "000"
    assert event.occurred_at == datetime(2024, 1, 15, 7, 31, tzinfo=UTC)
    assert event.payload["raw"]["connector"] == "3e8f2b1c"
    assert event.dedup_key == f"dlr:jas:{JASMIN_ID}:-:DELIVRD:2401151031"


def test_level1_esme_rok_is_transferred_to_the_operator():
    parsed = jasmin(
        {"id": JASMIN_ID, "level": "1", "message_status": "ESME_ROK", "connector": "smpp1"}
    )
    (event,) = parsed.events
    assert event.payload["status"] == 8
    assert event.payload["error_code"] is None
    assert event.occurred_at == RECEIVED_AT
    assert parsed.reply_body == "ACK/Jasmin"


def test_level1_submit_error_is_rejected_with_the_command_status():
    fields = {"id": JASMIN_ID, "level": "1", "message_status": "ESME_RINVDSTADR"}
    (event,) = jasmin(fields).events
    assert event.payload["status"] == 16
    assert event.payload["error_code"] == "ESME_RINVDSTADR"


def test_get_method_reads_the_query():
    request = get_request("/v1/dlr/jas", **level2(message_status="REJECTD"))
    (event,) = parse_report("jasmin", request, carrier_context("jas")).events
    assert event.payload["status"] == 16


def test_nd_fields_are_missing_and_without_done_date_the_receive_time_is_used():
    (event,) = jasmin(level2(donedate="ND", err="ND", sub="ND", message_status="UNDELIV")).events
    assert event.payload["status"] == 2
    assert event.payload["error_code"] is None
    assert event.payload["done_at"] is None
    assert event.occurred_at == RECEIVED_AT
    assert event.dedup_key.endswith(":UNDELIV:-")


def test_level1_and_level2_of_one_message_are_two_events():
    one = jasmin({"id": JASMIN_ID, "level": "1", "message_status": "ESME_ROK"}).events[0]
    two = jasmin(level2()).events[0]
    assert one.dedup_key != two.dedup_key
    assert one.carrier_message_id == two.carrier_message_id


def test_our_id_on_the_dlr_url_becomes_the_message_id():
    request = form_request("/v1/dlr/jas", level2(), query={"message_id": "232674"})
    (event,) = parse_report("jasmin", request, carrier_context("jas")).events
    assert event.message_id == "232674"


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"level": "2", "message_status": "DELIVRD"}, "id"),
        ({"id": JASMIN_ID, "message_status": "DELIVRD"}, "level"),
        ({"id": JASMIN_ID, "level": "3", "message_status": "DELIVRD"}, "level"),
        ({"id": JASMIN_ID, "level": "2"}, "message_status"),
        ({"id": JASMIN_ID, "level": "1", "message_status": "DELIVRD"}, "message_status"),
        (level2(message_status="WHATEVER"), "message_status"),
        (level2(donedate="24011510"), "donedate"),
    ],
)
def test_bad_reports_name_the_field(fields, field):
    with pytest.raises(ParseError) as caught:
        jasmin(fields)
    assert caught.value.field == field
