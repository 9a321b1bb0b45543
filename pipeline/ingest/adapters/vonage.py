"""``vonage``: the Vonage (Nexmo) SMS API delivery receipt.

Sent as a GET query, a form POST or a JSON POST, depending on the account's setting; all
three carry the same fields: ``messageId`` (Vonage's id of ONE part), ``status``,
``err-code``, ``price`` (a decimal string: what this part cost), ``scts`` (the carrier's
time, ``YYMMDDHHMM`` with no zone), ``client-ref`` (whatever the sender set on the message:
we set our message id there), ``msisdn``, ``to``, ``network-code``, ``message-timestamp``.

A long message is sent as parts, each with its own messageId, and Vonage sends one receipt
per part. So a receipt is about one part: its cost is that part's (cost_scope ``part``), and
it says nothing of the message's part count (``parts`` stays empty); the projector counts
the parts from the ``carrier.submitted`` events, so per-part receipts never multiply a
message or its parts.
"""

from __future__ import annotations

from typing import Any

from pipeline.ingest.adapters import statuses
from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.fields import (
    first,
    first_values,
    looks_like_json,
    optional_text,
    parse_currency,
    parse_decimal,
    parse_json,
    query_and_form,
)
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.report import Report, to_event
from pipeline.ingest.adapters.times import parse_smpp_date

FORMAT = "vonage"
#: Vonage bills an account in euros; a ``currency`` query parameter on the webhook URL (or
#: a ``currency`` field) overrides it for an account billed otherwise.
DEFAULT_CURRENCY = "EUR"


def parse(request: RawRequest, carrier: CarrierContext) -> Parsed:
    fields = _fields(request)
    vonage_id = optional_text(fields.get("messageId"), "messageId")
    if vonage_id is None:
        raise ParseError("messageId", "required")
    raw_status = optional_text(fields.get("status"), "status")
    if raw_status is None:
        raise ParseError("status", "required")
    status = statuses.VONAGE_STATUSES.get(raw_status.lower())
    if status is None:
        raise ParseError("status", f"unknown receipt status {raw_status[:20]!r} (docs/carriers.md)")
    message_id = optional_text(first(request.query, "message_id"), "message_id")
    message_id = message_id or optional_text(fields.get("client-ref"), "client-ref")
    cost = currency = None
    price = optional_text(fields.get("price"), "price")
    if price is not None:
        cost = parse_decimal(price, "price")
        if cost < 0:
            raise ParseError("price", "must not be negative")
        chosen = first(request.query, "currency") or fields.get("currency") or DEFAULT_CURRENCY
        currency = parse_currency(chosen, "currency")
    error_code = optional_text(fields.get("err-code"), "err-code")
    scts = optional_text(fields.get("scts"), "scts")
    report = Report(
        format=FORMAT,
        raw_status=raw_status,
        status=status,
        raw=fields,
        message_id=message_id,
        carrier_message_id=normalise_carrier_message_id(vonage_id, field="messageId"),
        error_code=None if error_code in (None, "0") else error_code,
        cost=cost,
        cost_scope="part" if cost is not None else None,
        currency=currency,
        done_at=None if scts is None else parse_smpp_date(scts, carrier.timezone, "scts"),
        raw_done=scts,
    )
    return Parsed(events=[to_event(report, request, carrier)])


def _fields(request: RawRequest) -> dict[str, Any]:
    if request.body.strip() and looks_like_json(request):
        document = parse_json(request)
        if not isinstance(document, dict):
            raise ParseError("body", "must be a JSON object (one receipt)")
        return {key: str(value) if value is not None else None for key, value in document.items()}
    return first_values(query_and_form(request))
