"""What every adapter shares: the registry, ParseError, ids, dedup keys, captured files, and
docs/carriers.md listing every row of every status table."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from pipeline.eventlog import NewEvent
from pipeline.ingest.adapters import (
    FORMATS,
    ParseError,
    normalise_carrier_message_id,
    parse_report,
    statuses,
)
from pipeline.ingest.captured import looks_captured, read_captured_requests
from tests.ingest import carrier_context, get_request, json_request, sample_text

DOCS = Path(__file__).resolve().parents[2] / "docs" / "carriers.md"


def test_every_format_has_a_parse_function():
    assert FORMATS == ("kannel", "jasmin", "smpp", "infobip", "vonage", "twilio", "generic")
    for fmt in FORMATS:
        assert callable(importlib.import_module(f"pipeline.ingest.adapters.{fmt}").parse)


def test_unknown_format_is_a_configuration_error_not_a_parse_error():
    with pytest.raises(ValueError) as caught:
        parse_report("smoke-signals", get_request("/v1/dlr/x"), carrier_context())
    assert not isinstance(caught.value, ParseError)


def test_parse_error_says_field_colon_reason():
    error = ParseError("results[0].price", "must be an object")
    assert (error.field, error.reason) == ("results[0].price", "must be an object")
    assert str(error) == "results[0].price: must be an object"


@pytest.mark.parametrize("fmt", FORMATS)
def test_garbage_is_a_parse_error_in_every_format(fmt):
    request = json_request("/v1/dlr/x", b"\xff\xfe garbage")
    with pytest.raises(ParseError):
        parse_report(fmt, request, carrier_context())


def test_every_status_maps_to_an_altegio_code():
    tables = [
        statuses.SMPP_STATS,
        statuses.KANNEL_TYPES,
        statuses.INFOBIP_GROUPS,
        statuses.INFOBIP_NAMES,
        statuses.VONAGE_STATUSES,
        statuses.TWILIO_STATUSES,
    ]
    for table in tables:
        assert set(table.values()) <= statuses.ALTEGIO_CODES


def test_carriers_doc_has_a_row_for_every_raw_status():
    doc = DOCS.read_text(encoding="utf-8")
    words = [
        *statuses.SMPP_STATS,
        *statuses.INFOBIP_GROUPS,
        *statuses.INFOBIP_NAMES,
        *statuses.VONAGE_STATUSES,
        *statuses.TWILIO_STATUSES,
    ]
    missing = [word for word in words if f"`{word}`" not in doc]
    assert missing == []
    for dlr_type in statuses.KANNEL_TYPES:
        assert f"type `{dlr_type}`" in doc


def test_ids_are_compared_case_blind_and_hex_equals_decimal_when_the_base_is_known():
    assert normalise_carrier_message_id(" 0A0000001234567B ") == "0a0000001234567b"
    assert normalise_carrier_message_id("3E8F2B1C", base=16) == "1049570076"
    assert normalise_carrier_message_id("001049570076", base=10) == "1049570076"
    with pytest.raises(ParseError) as caught:
        normalise_carrier_message_id("xyz", base=16, field="smsc_id")
    assert caught.value.field == "smsc_id"
    with pytest.raises(ParseError):
        normalise_carrier_message_id("  ")


def test_over_long_dedup_keys_are_hashed_but_stay_stable():
    report = {
        "carrier_message_id": "x" * 120,
        "status": "DELIVRD",
        "occurred_at": "2024-01-15T10:31:00Z",
    }
    request = json_request("/v1/dlr/g", json.dumps(report))
    first = parse_report("generic", request, carrier_context("g")).events[0]
    again = parse_report("generic", request, carrier_context("g")).events[0]
    assert first.dedup_key.startswith("dlr:sha256:")
    assert first.dedup_key == again.dedup_key
    assert len(first.dedup_key) <= 128


def test_events_are_carrier_status_with_every_documented_payload_key():
    request = json_request("/v1/dlr/g", '{"message_id": "1", "status": 1}')
    (event,) = parse_report("generic", request, carrier_context("g")).events
    assert isinstance(event, NewEvent)
    assert event.type == "carrier.status"
    assert set(event.payload) == {
        "format",
        "raw_status",
        "status",
        "error_code",
        "parts",
        "part",
        "cost",
        "cost_scope",
        "currency",
        "done_at",
        "raw",
        # This report has no time of its own: it carries our receive time and says so.
        "time_source",
    }
    assert event.payload["time_source"] == "received"


def test_captured_file_with_several_requests_comments_headers_and_bodies():
    text = (
        "# first\n"
        "GET /v1/dlr/k?type=8&answer=ACK%2F&to=%2B7916 HTTP/1.1\n"
        "# second, a POST with headers\n"
        "POST /v1/dlr/j HTTP/1.1\n"
        "Content-Type: application/json\n"
        "X-Smsrecon-Token: t\n"
        "\n"
        '{"a": 1,\n "b": 2}\n'
        "\n"
        "GET /v1/dlr/k?type=1 HTTP/1.0\n"
    )
    first, second, third = read_captured_requests(text)
    assert (first.method, first.path) == ("GET", "/v1/dlr/k")
    assert first.query == [("type", "8"), ("answer", "ACK/"), ("to", "+7916")]
    assert first.body == b""
    assert second.headers == {"content-type": "application/json", "x-smsrecon-token": "t"}
    assert json.loads(second.body) == {"a": 1, "b": 2}
    assert third.query == [("type", "1")]


def test_every_captured_sample_reads():
    assert len(read_captured_requests(sample_text("kannel_dlr_requests.txt"))) == 5
    (jasmin,) = read_captured_requests(sample_text("jasmin_dlr_level2.form"))
    assert jasmin.body.startswith(b"id=16fd2706") and not jasmin.body.endswith(b"\n")
    assert jasmin.headers["user-agent"] == "Jasmin gateway/1.0 DLRThrower"


def test_a_plain_json_document_is_not_a_captured_file():
    text = sample_text("infobip_sms_dlr.json")
    assert not looks_captured(text)
    assert looks_captured(sample_text("kannel_dlr_requests.txt"))
    with pytest.raises(ParseError) as caught:
        read_captured_requests(text)
    assert caught.value.field == "line 1"


def test_captured_header_garbage_names_the_line():
    with pytest.raises(ParseError) as caught:
        read_captured_requests("POST /x HTTP/1.1\nnot a header\n\nbody\n")
    assert caught.value.field == "line 2"
