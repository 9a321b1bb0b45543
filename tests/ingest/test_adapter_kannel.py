"""Kannel dlr-url callbacks: the sample file, the receipt-over-type rule, ids, times, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from pipeline.ingest.adapters import ParseError, parse_report
from pipeline.ingest.adapters.kannel import DLR_URL_TEMPLATE
from pipeline.ingest.captured import read_captured_requests
from tests.ingest import RECEIVED_AT, carrier_context, get_request, sample_text

RECEIPT = (
    "id:{id} sub:001 dlvrd:000 submit date:2401151030 done date:{done} stat:{stat} err:{err} text:"
)


def kannel(**fields: str):
    request = get_request("/v1/dlr/mts", **fields)
    return parse_report("kannel", request, carrier_context(zone="Europe/Moscow"))


def receipt(stat: str, *, id: str = "3e8f2b1c", done: str = "2401151031", err: str = "000"):
    return RECEIPT.format(id=id, stat=stat, done=done, err=err)


def test_sample_file_parses_to_one_event_per_callback():
    requests = read_captured_requests(sample_text("kannel_dlr_requests.txt"))
    context = carrier_context(zone="Europe/Moscow")
    events = [parse_report("kannel", r, context).events[0] for r in requests]

    summary = [
        (e.message_id, e.carrier_message_id, e.payload["status"], e.payload["raw_status"])
        for e in events
    ]
    assert summary == [
        ("42", "3e8f2b1c", 8, "kannel:8"),
        ("42", "3e8f2b1c", 4, "ENROUTE"),
        ("42", "3e8f2b1c", 1, "DELIVRD"),
        ("43", "3e8f2b1d", 2, "EXPIRED"),
        ("44", None, 16, "kannel:16"),
    ]
    delivered = events[2]
    # done date 2401151031 in Moscow (UTC+3), not Kannel's %T.
    assert delivered.occurred_at == datetime(2024, 1, 15, 7, 31, tzinfo=UTC)
    assert delivered.payload["done_at"] == "2024-01-15T07:31:00Z"
    assert delivered.payload["error_code"] == "000"
    assert delivered.dedup_key == "dlr:mts:3e8f2b1c:-:DELIVRD:2401151031"
    assert delivered.source == "http:/kannel/dlr"
    assert delivered.payload["format"] == "kannel"
    assert delivered.payload["parts"] is None and delivered.payload["cost"] is None
    nack = events[4]
    assert nack.payload["error_code"] == "0x0000000b"
    assert nack.dedup_key == "dlr:mts:44:-:kannel:16:-"
    # No receipt: Kannel's %T (ts=1705314600, a Unix time) is the report's time.
    assert nack.occurred_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert "time_source" not in nack.payload


def test_template_field_names_carry_our_id_and_the_smsc_id():
    parsed = kannel(
        message_id="232674",
        type="1",
        answer=receipt("DELIVRD"),
        smsc="smpp_mts",
        smsc_id="3E8F2B1C",
        ts="1705314662",
        to="+79161234567",
        **{"from": "BeautySalon"},
    )
    event = parsed.events[0]
    assert event.message_id == "232674"
    assert event.carrier_message_id == "3e8f2b1c"
    assert event.payload["raw"]["to"] == "+79161234567"
    assert parsed.reply_status == 200


def test_template_names_every_field_the_adapter_reads():
    for name in ("message_id=", "type=%d", "answer=%A", "smsc_id=%F", "ts=%T", "to=%p", "from=%P"):
        assert name in DLR_URL_TEMPLATE


def test_rejectd_receipt_is_16_even_when_kannel_says_type_2():
    event = kannel(message_id="1", type="2", smsc_id="a1", answer=receipt("REJECTD")).events[0]
    assert event.payload["status"] == 16
    assert event.payload["raw_status"] == "REJECTD"


@pytest.mark.parametrize("stat", ["ACCEPTD", "ENROUTE"])
def test_accepted_and_enroute_receipts_are_sent_to_phone(stat):
    event = kannel(message_id="1", type="4", smsc_id="a1", answer=receipt(stat)).events[0]
    assert event.payload["status"] == 4


def test_receipt_decides_over_a_contradicting_type():
    event = kannel(message_id="1", type="1", smsc_id="a1", answer=receipt("UNDELIV")).events[0]
    assert event.payload["status"] == 2


def test_unknown_receipt_stat_falls_back_to_kannels_type():
    event = kannel(message_id="1", type="2", smsc_id="a1", answer=receipt("SUBMITD")).events[0]
    assert event.payload["status"] == 2
    assert event.payload["raw_status"] == "SUBMITD"


def test_smsc_accept_and_reject_follow_the_type():
    assert kannel(message_id="1", type="8", answer="ACK/").events[0].payload["status"] == 8
    refused = kannel(message_id="1", type="16", answer="NACK/0x00000045/Submit failed")
    assert refused.events[0].payload["status"] == 16
    assert refused.events[0].payload["error_code"] == "0x00000045"


def test_kannel_build_time_is_the_time_of_a_report_without_receipt_but_not_its_done_date():
    event = kannel(message_id="1", type="8", smsc_id="a1", ts="1705314600", answer="ACK/")
    # A Unix time is UTC whatever the carrier's zone (Europe/Moscow here).
    assert event.events[0].occurred_at == datetime(2024, 1, 15, 10, 30, tzinfo=UTC)
    assert event.events[0].payload["done_at"] is None
    later = kannel(message_id="1", type="8", smsc_id="a1", ts="1705314999", answer="ACK/")
    assert later.events[0].dedup_key == event.events[0].dedup_key


def test_a_receipt_done_date_decides_over_kannels_build_time():
    event = kannel(message_id="1", type="1", smsc_id="a1", ts="1", answer=receipt("DELIVRD"))
    assert event.events[0].occurred_at == datetime(2024, 1, 15, 7, 31, tzinfo=UTC)


def test_a_report_without_any_time_carries_the_receive_time_and_says_so():
    event = kannel(message_id="1", type="8", smsc_id="a1", answer="ACK/")
    assert event.events[0].occurred_at == RECEIVED_AT
    assert event.events[0].payload["time_source"] == "received"


@pytest.mark.parametrize("ts", ["-5", "1e9", "１２３", "9" * 13])
def test_a_ts_that_is_not_a_unix_time_is_refused(ts):
    with pytest.raises(ParseError, match=r"^ts: "):
        kannel(message_id="1", type="8", smsc_id="a1", ts=ts, answer="ACK/")


def test_resent_callback_has_the_same_dedup_key_and_a_later_one_a_different_key():
    first = kannel(message_id="1", type="4", smsc_id="a1", answer=receipt("ENROUTE"))
    again = kannel(message_id="1", type="4", smsc_id="a1", answer=receipt("ENROUTE"), ts="9")
    final = kannel(message_id="1", type="1", smsc_id="a1", answer=receipt("DELIVRD"))
    assert first.events[0].dedup_key == again.events[0].dedup_key
    assert first.events[0].dedup_key != final.events[0].dedup_key


def test_each_part_of_a_long_message_is_its_own_report_without_part_counts():
    part1 = kannel(message_id="7", type="1", smsc_id="p1", answer=receipt("DELIVRD", id="p1"))
    part2 = kannel(message_id="7", type="1", smsc_id="p2", answer=receipt("DELIVRD", id="p2"))
    one, two = part1.events[0], part2.events[0]
    assert one.message_id == two.message_id == "7"
    assert one.dedup_key != two.dedup_key
    assert one.payload["parts"] is None and two.payload["parts"] is None


def test_token_query_parameter_is_not_kept_in_raw():
    event = kannel(message_id="1", type="8", answer="ACK/", token="s3cret").events[0]
    assert "token" not in event.payload["raw"]
    assert "s3cret" not in repr(event)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"message_id": "1"}, "type"),
        ({"message_id": "1", "type": "3"}, "type"),
        ({"message_id": "1", "type": "x"}, "type"),
        ({"type": "8", "answer": "ACK/"}, "message_id"),
        (
            {"message_id": "1", "type": "1", "answer": receipt("DELIVRD", done="2413")},
            "answer.done date",
        ),
        ({"message_id": "1", "type": "1", "answer": "id:1 stat:DELIV%RD err:0"}, "answer.stat"),
    ],
)
def test_bad_callbacks_name_the_field(fields, field):
    with pytest.raises(ParseError) as caught:
        kannel(**fields)
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}: ")
