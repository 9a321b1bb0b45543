"""SMPP 3.4 receipts: the tolerant parser, the sample deliver_sm, zones, ids, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.ingest.adapters import ParseError, RawRequest, parse_report
from pipeline.ingest.adapters.smpp import is_receipt, parse_receipt
from tests.ingest import RECEIVED_AT, carrier_context, get_request, sample_text

SPEC = (
    "id:3e8f2b1c sub:001 dlvrd:001 submit date:2401151030 done date:2401151031 "
    "stat:DELIVRD err:000 text:Hello Anna, your ap"
)


def text_request(body: str, **query: str) -> RawRequest:
    return RawRequest(
        "POST", "/v1/dlr/smsc", list(query.items()), {"content-type": "text/plain"}, body.encode()
    )


def test_spec_receipt_fields_are_read_verbatim():
    receipt = parse_receipt(SPEC)
    assert receipt.id == "3e8f2b1c"
    assert (receipt.sub, receipt.dlvrd) == ("001", "001")
    assert (receipt.submit_date, receipt.done_date) == ("2401151030", "2401151031")
    assert (receipt.stat, receipt.err) == ("DELIVRD", "000")
    assert receipt.text == "Hello Anna, your ap"
    assert receipt.status == 1


def test_variants_seconds_capitalised_text_missing_sub_and_four_digit_err():
    receipt = parse_receipt(
        "id:77 submit date:240115103005 done date:240115103159 stat:UNDELIV err:0012 Text:x stat:1"
    )
    assert receipt.sub is None and receipt.dlvrd is None
    assert receipt.done_date == "240115103159"
    assert receipt.err == "0012"
    assert receipt.text == "x stat:1"  # text ends the receipt; a "stat:" inside it is text
    assert receipt.done_at(carrier_context().timezone) == datetime(
        2024, 1, 15, 10, 31, 59, tzinfo=UTC
    )


@pytest.mark.parametrize(
    ("stat", "status"),
    [
        ("FAILED", 2),
        ("NACK", 2),
        ("ACKED", 4),
        ("BUFFRED", 4),
        ("ACCEPTD", 4),
        ("ENROUTE", 4),
        ("REJECTD", 16),
        ("EXPIRED", 2),
        ("DELETED", 2),
        ("UNKNOWN", 2),
        ("delivrd", 1),
    ],
)
def test_stats_map_to_altegio_codes(stat, status):
    assert parse_receipt(f"id:1 stat:{stat} err:000").status == status


def test_sample_deliver_sm_dump_parses_with_its_tlvs():
    parsed = parse_report(
        "smpp",
        text_request(sample_text("smpp34_deliver_sm_receipt.txt")),
        carrier_context("smsc", "Europe/Moscow"),
    )
    (event,) = parsed.events
    assert event.carrier_message_id == "3e8f2b1c"
    assert event.payload["status"] == 1
    assert event.occurred_at == datetime(2024, 1, 15, 7, 31, tzinfo=UTC)
    assert event.payload["raw"]["tlv"]["message_state"] == "2"
    assert event.payload["raw"]["pdu"]["esm_class"] == "0x04"
    assert event.dedup_key == "dlr:smsc:3e8f2b1c:-:DELIVRD:2401151031"


def test_zone_less_dates_are_read_in_the_carrier_zone():
    moscow = parse_report("smpp", text_request(SPEC), carrier_context("smsc", "Europe/Moscow"))
    utc = parse_report("smpp", text_request(SPEC), carrier_context("smsc", "UTC"))
    assert moscow.events[0].occurred_at == datetime(2024, 1, 15, 7, 31, tzinfo=UTC)
    assert utc.events[0].occurred_at == datetime(2024, 1, 15, 10, 31, tzinfo=UTC)
    # The raw done date keys the report, so the zone setting never splits a duplicate.
    assert moscow.events[0].dedup_key == utc.events[0].dedup_key


def test_smpp_absolute_time_carries_its_own_offset():
    body = "id:1 done date:240115103100004+ stat:DELIVRD err:000 text:"
    (event,) = parse_report(
        "smpp", text_request(body), carrier_context("smsc", "Asia/Tokyo")
    ).events
    assert event.occurred_at == datetime(2024, 1, 15, 9, 31, tzinfo=UTC)


def test_several_receipt_lines_are_several_events():
    body = (
        SPEC + "\n# comment\n" + SPEC.replace("3e8f2b1c", "3e8f2b1d").replace("DELIVRD", "EXPIRED")
    )
    events = parse_report("smpp", text_request(body), carrier_context("smsc")).events
    assert [e.payload["status"] for e in events] == [1, 2]


def test_receipt_in_a_query_field_with_our_id():
    request = get_request("/v1/dlr/smsc", receipt=SPEC, message_id="232674")
    (event,) = parse_report("smpp", request, carrier_context("smsc")).events
    assert event.message_id == "232674"


def test_hex_receipt_ids_become_decimal_when_the_smsc_quotes_hex():
    request = get_request(
        "/v1/dlr/smsc", receipt=SPEC.replace("3e8f2b1c", "3E8F2B1C"), id_base="hex"
    )
    (event,) = parse_report("smpp", request, carrier_context("smsc")).events
    assert event.carrier_message_id == str(0x3E8F2B1C)


def test_message_state_tlv_stands_in_for_a_missing_stat():
    body = (
        'short_message=""\n'
        'TLV receipted_message_id (0x001E) = "abc"\n'
        "TLV message_state (0x0427) = 8\n"
    )
    (event,) = parse_report("smpp", text_request(body), carrier_context("smsc")).events
    assert event.payload["status"] == 16
    assert event.payload["raw_status"] == "REJECTD"
    assert event.occurred_at == RECEIVED_AT


def test_is_receipt_tells_receipts_from_gateway_acks():
    assert is_receipt(SPEC)
    assert not is_receipt("ACK/")
    assert not is_receipt("NACK/0x0000000b/Invalid Destination Address")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ("hello world", "body"),
        ("id:1 err:000 text:", "body"),
        ("id:1 stat:SUBMITD err:000", "stat"),
        ("id:1 stat:DELIVRD done date:2401", "done date"),
        ("", "receipt"),
    ],
)
def test_bad_receipts_name_the_field(body, field):
    with pytest.raises(ParseError) as caught:
        parse_report("smpp", text_request(body), carrier_context("smsc"))
    assert caught.value.field == field


def test_parse_receipt_refuses_text_without_a_stat():
    with pytest.raises(ParseError) as caught:
        parse_receipt("id:1 sub:001")
    assert caught.value.field == "stat"
