"""``kannel``: Kannel smsbox's ``dlr-url`` callback (always an HTTP GET).

The dlr-url operators configure is exactly ``DLR_URL_TEMPLATE`` (docs/carriers.md).

``type`` (%d) is one DLR type per call: 1 delivered, 2 failed, 4 buffered, 8 accepted by
the SMSC, 16 refused by the SMSC. ``answer`` (%A) is the SMSC's raw receipt text for 1/2/4,
``ACK/`` for 8 and ``NACK/0x<command_status>/<reason>`` for 16. Where a receipt is there it
decides over Kannel's coarser type, because Kannel folds REJECTD into "failed" and ACCEPTD
into "buffered". ``ts`` (%T) is when Kannel built the report, a Unix time (so UTC, whatever
the carrier's zone), not the carrier's done date: it is never stored as one, and never part
of the dedup key, but a report without a receipt date (type 8, 16, a receipt without one)
takes it as its time. It is when the gateway learned of the report, a far better estimate
than our receive time when a gateway's queue is sent late. ``%I`` is a fresh id per callback
and correlates nothing.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from pipeline.ingest.adapters import statuses
from pipeline.ingest.adapters.base import CarrierContext, Parsed, ParseError, RawRequest
from pipeline.ingest.adapters.fields import first_values, parse_int, query_and_form
from pipeline.ingest.adapters.ids import normalise_carrier_message_id
from pipeline.ingest.adapters.report import Report, to_event
from pipeline.ingest.adapters.smpp import Receipt, scan_receipt

FORMAT = "kannel"

#: The dlr-url to configure in Kannel; the sending code fills in ``<OUR ID>`` (URL-encoded).
DLR_URL_TEMPLATE = (
    "http://HOST:PORT/v1/dlr/<carrier>?message_id=<OUR ID>"
    "&type=%d&answer=%A&smsc=%i&smsc_id=%F&ts=%T&to=%p&from=%P"
)

#: Field names of the template, and the names Kannel's own examples use for the same escapes.
ALIASES: dict[str, tuple[str, ...]] = {
    "message_id": ("message_id", "our_id"),
    "smsc_id": ("smsc_id", "fid"),
    "to": ("to", "phone"),
    "from": ("from", "sender"),
}
#: A Unix time in seconds: ASCII digits, at most 12 of them (checked before any ``int``).
_UNIX_TIME = re.compile(r"[0-9]{1,12}")
_NACK = re.compile(r"^NACK/(?:(0x[0-9A-Fa-f]+)/?)?(.*)$", re.DOTALL)


def parse(request: RawRequest, carrier: CarrierContext) -> Parsed:
    # Each field's first value (gateways never legitimately repeat one): looked up by name
    # below, and kept as the report's ``raw``.
    fields = first_values(query_and_form(request))
    raw_type = fields.get("type")
    if raw_type is None or not raw_type.strip():
        raise ParseError("type", "required (the dlr-url must carry type=%d)")
    dlr_type = parse_int(raw_type, "type")
    if dlr_type not in statuses.KANNEL_TYPES:
        raise ParseError("type", f"{dlr_type} is not a Kannel DLR type (1, 2, 4, 8, 16)")
    message_id = _field(fields, "message_id")
    smsc_id = _field(fields, "smsc_id")
    answer = fields.get("answer") or ""

    receipt: Receipt | None = None
    error_code: str | None = None
    nack = _NACK.match(answer)
    if nack:
        error_code = (nack.group(1) or "").lower() or None
    elif dlr_type in (1, 2, 4):
        try:
            receipt = scan_receipt(answer)
        except ParseError as exc:
            raise ParseError(f"answer.{exc.field}", exc.reason) from None
        if receipt is not None:
            error_code = receipt.err

    status = statuses.KANNEL_TYPES[dlr_type]
    raw_status = f"kannel:{dlr_type}"
    if receipt is not None:
        raw_status = receipt.stat
        # The receipt decides, unless its stat is one no table knows: then Kannel's type.
        status = receipt.status if receipt.status is not None else status

    carrier_id = smsc_id or (receipt.id if receipt is not None else None)
    report = Report(
        format=FORMAT,
        raw_status=raw_status,
        status=status,
        raw=fields,
        message_id=message_id,
        carrier_message_id=None
        if carrier_id is None
        else normalise_carrier_message_id(carrier_id, field="smsc_id"),
        error_code=error_code,
        done_at=None if receipt is None else _done_at(receipt, carrier),
        raw_done=None if receipt is None else receipt.done_date,
        reported_at=_reported_at(fields.get("ts")),
    )
    return Parsed(events=[to_event(report, request, carrier)])


def _field(fields: dict[str, str], name: str) -> str | None:
    for alias in ALIASES[name]:
        value = fields.get(alias)
        if value is not None and value.strip():
            return value.strip()
    return None


def _reported_at(value: str | None) -> datetime | None:
    """``ts`` (%T) as an aware UTC time; None when the dlr-url does not carry it."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if not _UNIX_TIME.fullmatch(text):
        raise ParseError("ts", "must be a Unix time in seconds (Kannel's %T)")
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except (OverflowError, OSError, ValueError):
        raise ParseError("ts", "is not a time any calendar holds") from None


def _done_at(receipt: Receipt, carrier: CarrierContext) -> datetime | None:
    try:
        return receipt.done_at(carrier.timezone)
    except ParseError as exc:
        raise ParseError(f"answer.{exc.field}", exc.reason) from None
