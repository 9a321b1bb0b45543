"""The pure pieces: the exact body Altegio receives, and what each answer means."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipeline.dispatch.outcome import classify_network_error, classify_response, read_error_body
from pipeline.dispatch.payload import PayloadError, build_payload, encode_body, should_send

NOW = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def _payload(amount: str, currency: str = "RUB"):  # type: ignore[no-untyped-def]
    return build_payload(
        message_id='id "1"', status=1, payment_sum=Decimal(amount), currency_iso=currency,
        parts_amount=2,
    )  # fmt: skip


def test_payment_sum_is_written_with_exactly_the_minor_unit_decimals() -> None:
    body = encode_body([_payload("4.5"), _payload("12", "JPY"), _payload("0.125", "BHD")])
    text = body.decode()
    assert '"payment_sum": 4.50,' in text and '"payment_sum": 12,' in text
    assert '"payment_sum": 0.125,' in text
    parsed = json.loads(body, parse_float=Decimal)
    assert parsed[0] == {
        "id": 'id "1"', "status": 1, "payment_sum": Decimal("4.50"), "currency_iso": "RUB",
        "parts_amount": 2,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("amount", "currency"), [("4.505", "RUB"), ("1.5", "JPY"), ("-1", "RUB"), ("1", "XXZ")]
)
def test_a_payload_that_would_need_rounding_or_is_invalid_is_refused(
    amount: str, currency: str
) -> None:
    with pytest.raises(PayloadError):
        _payload(amount, currency)


def test_the_object_shape_carries_one_status() -> None:
    assert json.loads(encode_body([_payload("1")], shape="object"))["status"] == 1
    with pytest.raises(ValueError):
        encode_body([_payload("1"), _payload("2")], shape="object")


def test_send_intermediate_off_skips_only_sent_to_phone() -> None:
    assert not should_send(4, is_final=False, send_intermediate=False)
    assert should_send(8, is_final=False, send_intermediate=False)
    assert should_send(1, is_final=True, send_intermediate=False)
    assert should_send(4, is_final=False, send_intermediate=True)


@pytest.mark.parametrize(
    ("status", "action", "kind"),
    [
        (200, "acknowledged", None),
        (204, "acknowledged", None),
        (400, "split", "altegio_validation"),
        (413, "split", "altegio_validation"),
        (404, "split", "altegio_not_found"),
        (403, "park", "altegio_forbidden"),
        (401, "open_circuit", "partner_token_invalid"),
        (429, "retry", None),
        (500, "retry", None),
        (503, "retry", None),
        (408, "retry", None),
        (302, "park", "altegio_rejected"),
        (422, "park", "altegio_rejected"),
    ],
)
def test_each_answer_class_has_one_meaning(status: int, action: str, kind: str | None) -> None:
    outcome = classify_response(status, {}, b"", NOW)
    assert (outcome.action, outcome.kind) == (action, kind)


def test_retry_after_is_read_in_both_forms() -> None:
    seconds = classify_response(429, {"Retry-After": "120"}, b"", NOW)
    date = classify_response(503, {"Retry-After": "Thu, 15 Jan 2026 10:01:00 GMT"}, b"", NOW)
    assert (seconds.retry_after, date.retry_after) == (120.0, 60.0)


@pytest.mark.parametrize(
    ("body", "code", "text"),
    [
        (b'{"success": false, "data": null, "meta": {"message": "bad id", "code": 10}}', 10,
         "bad id"),
        (b'{"code": 5, "message": "body"}', 5, "body"),
        (b"<html>502 Bad Gateway</html>", None, "<html>502 Bad Gateway</html>"),
        (b"", None, ""),
        (b"\xff\xfe not utf-8", None, "\ufffd\ufffd not utf-8"),
        (b"[1, 2]", None, "[1, 2]"),
    ],
)  # fmt: skip
def test_error_bodies_are_read_tolerantly(body: bytes, code: int | None, text: str) -> None:
    assert read_error_body(body) == (code, text)


def test_no_answer_is_transient() -> None:
    assert classify_network_error(TimeoutError()).text == "timed out"
    assert classify_network_error(ConnectionResetError("reset by peer")).action == "retry"
