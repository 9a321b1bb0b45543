"""Twilio status callbacks: the sample, the status table, the signature helper, errors."""

from __future__ import annotations

import hmac
from datetime import UTC, datetime

import pytest

from pipeline.ingest.adapters import ParseError, parse_report
from pipeline.ingest.adapters.twilio import twilio_signature
from pipeline.ingest.captured import read_captured_requests
from tests.ingest import RECEIVED_AT, carrier_context, form_request, sample_text

SID = "SM1342fe1b2c904d1ab04f0fc7a58abca9"


def twilio(fields, query=None):
    return parse_report("twilio", form_request("/v1/dlr/tw", fields, query), carrier_context("tw"))


def test_sample_callback_parses():
    (request,) = read_captured_requests(sample_text("twilio_status_callback_delivered.form"))
    (event,) = parse_report("twilio", request, carrier_context("tw")).events
    assert event.carrier_message_id == SID.lower()
    assert event.payload["status"] == 1
    assert event.payload["raw_status"] == "delivered"
    assert event.payload["cost"] is None and event.payload["parts"] is None
    assert event.occurred_at == datetime(2024, 1, 15, 10, 31, tzinfo=UTC)
    assert event.dedup_key == f"dlr:tw:{SID.lower()}:-:delivered:2401151031"


@pytest.mark.parametrize(
    ("status", "code"),
    [
        ("queued", 8),
        ("sending", 8),
        ("sent", 4),
        ("delivered", 1),
        ("undelivered", 2),
        ("failed", 2),
    ],
)
def test_statuses_map_to_altegio_codes(status, code):
    (event,) = twilio({"MessageSid": SID, "MessageStatus": status}).events
    assert event.payload["status"] == code
    assert event.occurred_at == RECEIVED_AT


def test_error_code_and_segments_are_read():
    fields = {
        "MessageSid": SID,
        "MessageStatus": "undelivered",
        "ErrorCode": "30003",
        "NumSegments": "2",
    }
    (event,) = twilio(fields).events
    assert event.payload["error_code"] == "30003"
    assert event.payload["parts"] == 2


def test_out_of_order_callbacks_are_each_kept():
    sent = twilio({"MessageSid": SID, "MessageStatus": "sent"}).events[0]
    delivered = twilio({"MessageSid": SID, "MessageStatus": "delivered"}).events[0]
    assert sent.dedup_key != delivered.dedup_key


def test_our_id_on_the_status_callback_url_becomes_the_message_id():
    (event,) = twilio({"MessageSid": SID, "MessageStatus": "sent"}, {"message_id": "232674"}).events
    assert event.message_id == "232674"


def test_signature_matches_twilios_published_example():
    params = {
        "CallSid": "CA1234567890ABCDE",
        "Caller": "+12349013030",
        "Digits": "1234",
        "From": "+12349013030",
        "To": "+18005551212",
    }
    url = "https://mycompany.com/myapp.php?foo=1&bar=2"
    expected = "0/KCTR6DLpKmkAf8muzZqo1nDgQ="
    assert twilio_signature(url, params, "12345") == expected
    assert twilio_signature(url, list(reversed(params.items())), "12345") == expected
    assert not hmac.compare_digest(twilio_signature(url, params, "54321"), expected)


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"MessageStatus": "sent"}, "MessageSid"),
        ({"MessageSid": SID}, "MessageStatus"),
        ({"MessageSid": SID, "MessageStatus": "received"}, "MessageStatus"),
        ({"MessageSid": SID, "MessageStatus": "vanished"}, "MessageStatus"),
        (
            {"MessageSid": SID, "MessageStatus": "delivered", "RawDlrDoneDate": "24"},
            "RawDlrDoneDate",
        ),
        ({"MessageSid": SID, "MessageStatus": "sent", "NumSegments": "0"}, "NumSegments"),
    ],
)
def test_bad_callbacks_name_the_field(fields, field):
    with pytest.raises(ParseError) as caught:
        twilio(fields)
    assert caught.value.field == field
